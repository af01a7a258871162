//! "alice is typing…" under the conversation.

use leptos::prelude::*;

#[component]
pub(crate) fn TypingIndicator(typing: RwSignal<Vec<(String, f64)>>, me: String) -> impl IntoView {
    let text = move || {
        let names: Vec<String> = typing.with(|t| {
            t.iter()
                .filter(|(name, _)| *name != me)
                .map(|(name, _)| name.clone())
                .collect()
        });
        sentence(&names)
    };
    view! { <p class="typing" data-testid="typing" aria-live="polite">{text}</p> }
}

fn sentence(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [one, two] => format!("{one} and {two} are typing…"),
        more => format!("{} people are typing…", more.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_naturally() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(sentence(&[]), "");
        assert_eq!(sentence(&names(&["al"])), "al is typing…");
        assert_eq!(sentence(&names(&["al", "bo"])), "al and bo are typing…");
        assert_eq!(sentence(&names(&["a", "b", "c"])), "3 people are typing…");
    }
}
