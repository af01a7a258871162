//! When two usernames are the same name.
//!
//! A room compares names by a key, never by their bytes, so `Alice`,
//! `alice` and the fullwidth `Ａlice` are one name and only one of them can
//! be in a room at a time. Everyone still sees the name as its holder
//! typed it.

use unicode_normalization::UnicodeNormalization;

/// The key two names in one room may not share.
///
/// 1. NFKC folds compatibility look-alikes into their plain form: fullwidth
///    `Ａ` → `A`, `ﬁ` → `fi`, `²` → `2`, no-break and ideographic spaces →
///    space; and it composes, so `e` + U+0301 and `é` are one.
/// 2. Lowercase, so case does not matter.
/// 3. NFKC again: lowercasing can undo step 1's normal form. `J` + U+030C
///    has no precomposed capital, but its lowercase `j` + U+030C composes
///    to `ǰ`; without this step `J̌` and `ǰ` would get different keys.
///
/// 4. Every sigma as `σ`: lowercasing writes a word-final `Σ` as `ς`, and
///    NFKC turns the lunate `Ϲ`/`ϲ` into `Σ`/`ς`, so the same letter would
///    key differently by where it stands or how it was typed (`Ϲ` keyed
///    as `σ`, its lowercase `ϲ` as `ς`; found by the property below).
///
/// Runs of whitespace count as one space: the user list shows names on one
/// line (`white-space: nowrap`), where the browser collapses them anyway.
pub(crate) fn name_key(name: &str) -> String {
    let lower = name.nfkc().collect::<String>().to_lowercase();
    let key: String = lower
        .nfkc()
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect();
    key.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn case_width_and_composition_do_not_make_a_new_name() {
        for same in [
            "Alice",
            "ALICE",
            "alice",
            "Ａlice",
            "ＡＬＩＣＥ",
            "ａｌｉｃｅ",
        ] {
            assert_eq!(name_key(same), "alice", "{same}");
        }
        assert_eq!(name_key("Zoe\u{301}"), name_key("zoé"));
        assert_eq!(
            name_key("J\u{30C}"),
            name_key("ǰ"),
            "normalised after lowercasing"
        );
        assert_eq!(name_key("ﬁona"), name_key("Fiona"));
        assert_eq!(name_key("bob²"), name_key("bob2"));
        assert_eq!(name_key("İ"), "i\u{307}");
        assert_eq!(name_key("Ϲ"), name_key("ϲ"), "a lunate sigma is a sigma");
        assert_eq!(name_key("ΟΔΟΣ"), name_key("οδοσ"), "so is a final one");
    }

    #[test]
    fn spaces_compare_as_one() {
        let key = name_key("zoë & co");
        for same in ["Zoë  &  co", "zoë\u{A0}&\u{3000}co", "zoë\u{2003}& co"] {
            assert_eq!(name_key(same), key, "{same:?}");
        }
    }

    #[test]
    fn different_names_stay_different() {
        assert_ne!(name_key("alice"), name_key("alice2"));
        assert_ne!(name_key("al ice"), name_key("alice"));
        assert_ne!(name_key("ß"), name_key("ss"), "lowercase, not case folding");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// A key is its own key, so keying a stored key changes nothing.
        #[test]
        fn the_key_is_idempotent(name in "\\PC{0,32}") {
            let key = name_key(&name);
            prop_assert_eq!(name_key(&key), key);
        }

        /// Writing a name in lowercase never makes it another name. (Not
        /// so for uppercase: `ß` → `SS` is a different name, `ss`.)
        #[test]
        fn a_lowercased_name_keeps_its_key(name in "\\PC{0,32}") {
            prop_assert_eq!(name_key(&name.to_lowercase()), name_key(&name));
        }
    }
}
