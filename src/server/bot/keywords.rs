//! The help bot's keyword table: a TOML file people edit (`help-bot.toml`),
//! read once at start. A file that cannot be used stops the server with an
//! error naming the file and line, rather than a bot that answers nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The table as shipped, used when the configured file does not exist.
const BUILT_IN: &str = include_str!("../../../help-bot.toml");

/// Why the keyword file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeywordsError {
    #[error("cannot read the help bot's keywords {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the help bot's keywords {path}, line {line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What the bot says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Keywords {
    greeting: String,
    unknown: String,
    answers: Vec<Answer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    keywords: toml::Spanned<Vec<String>>,
    reply: String,
}

impl Keywords {
    /// The table at `path`, or the built-in one if there is no such file.
    pub(crate) fn load(path: &Path) -> Result<Self, KeywordsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "no keyword file: the help bot uses its built-in table");
                Self::parse(BUILT_IN, Path::new("(built in)"))
            }
            Err(source) => Err(KeywordsError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn parse(text: &str, path: &Path) -> Result<Self, KeywordsError> {
        let invalid = |at: usize, message: String| KeywordsError::Invalid {
            path: path.to_owned(),
            line: text[..at.min(text.len())].matches('\n').count() + 1,
            message,
        };
        let table: Keywords = toml::from_str(text).map_err(|err| {
            let at = err.span().map_or(0, |span| span.start);
            invalid(at, err.message().to_owned())
        })?;
        for answer in &table.answers {
            let words = answer.keywords.get_ref();
            if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
                return Err(invalid(
                    answer.keywords.span().start,
                    "every answer needs keywords, and none may be empty".to_owned(),
                ));
            }
        }
        Ok(table)
    }

    /// What to say to `name` on arriving in #help.
    pub(crate) fn greeting(&self, name: &str) -> String {
        self.greeting.replace("{name}", name)
    }

    /// The answer to `name`'s `message`: the first answer with a keyword
    /// among its words, or the "don't understand" with the keywords.
    pub(crate) fn answer(&self, name: &str, message: &str) -> String {
        let words: Vec<String> = message
            .split(|c: char| !c.is_alphanumeric() && c != '\'')
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let found = self.answers.iter().find(|answer| {
            answer
                .keywords
                .get_ref()
                .iter()
                .any(|keyword| words.iter().any(|w| *w == keyword.to_lowercase()))
        });
        match found {
            Some(answer) => answer.reply.replace("{name}", name),
            None => {
                let all: Vec<&str> = self
                    .answers
                    .iter()
                    .flat_map(|a| a.keywords.get_ref().iter().map(String::as_str))
                    .collect();
                self.unknown
                    .replace("{name}", name)
                    .replace("{keywords}", &all.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in() -> Keywords {
        Keywords::parse(BUILT_IN, Path::new("help-bot.toml")).unwrap()
    }

    #[test]
    fn each_keyword_and_the_unknown_case() {
        let table = built_in();
        assert_eq!(
            table.answer("ann", "Hello!"),
            "Hello ann, how can I help you today?"
        );
        assert_eq!(
            table.answer("ann", "hi there"),
            "Hello ann, how can I help you today?"
        );
        assert!(
            table
                .answer("ann", "i need HELP")
                .starts_with("Of course, ann: please describe")
        );
        assert_eq!(
            table.answer("ann", "helpful?"),
            "Sorry ann, I don't understand. I know about: hi, hello, hey, help."
        );
        assert!(table.greeting("ann").starts_with("Welcome to #help, ann!"));
    }

    #[test]
    fn a_bad_file_is_refused_with_its_line() {
        let path = Path::new("k.toml");
        let bad =
            "greeting = \"x\"\nunknown = \"y\"\n\n[[answers]]\nkeywords = \"hi\"\nreply = \"z\"\n";
        let err = Keywords::parse(bad, path).unwrap_err().to_string();
        assert!(
            err.starts_with("the help bot's keywords k.toml, line 5: "),
            "{err}"
        );
        let empty =
            "greeting = \"x\"\nunknown = \"y\"\n[[answers]]\nkeywords = []\nreply = \"z\"\n";
        let err = Keywords::parse(empty, path).unwrap_err().to_string();
        assert!(err.contains("line 4: every answer needs keywords"), "{err}");
        let typo = "greeting = \"x\"\nunknwn = \"y\"\n";
        let err = Keywords::parse(typo, path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }
}
