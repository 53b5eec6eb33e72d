//! Where the hits came from, said once per message: a full path repeated in every section costs
//! a phone line each time. When every rule's hits come from one file, the heading names it and
//! the sections say nothing; otherwise the heading names the files' common directory and each
//! section lists its files relative to it.

use crate::summary::RuleSummary;

/// The message's files, folded.
#[derive(Debug, Default)]
pub(super) struct Paths {
    /// The one file of every hit, when there is only one.
    single: Option<String>,
    /// The common directory (ending with `/`) stripped from the files in sections.
    prefix: String,
}

impl Paths {
    /// Folds the files of `rules`.
    pub(super) fn new(rules: &[RuleSummary]) -> Paths {
        let mut files: Vec<&str> = rules
            .iter()
            .flat_map(|r| r.files.iter().map(String::as_str))
            .collect();
        files.sort_unstable();
        files.dedup();
        let is_complete = rules.iter().all(|r| r.other_files == 0);
        if let [only] = files.as_slice()
            && is_complete
        {
            return Paths {
                single: Some((*only).to_owned()),
                prefix: String::new(),
            };
        }
        Paths {
            single: None,
            prefix: common_directory(&files),
        }
    }

    /// What the heading says: the one file, or the common directory (`None`: nothing common).
    pub(super) fn heading(&self) -> Option<&str> {
        self.single
            .as_deref()
            .or(Some(self.prefix.as_str()).filter(|p| p.len() > 1))
    }

    /// A file as a section shows it (`None`: the heading already names it).
    pub(super) fn in_section<'a>(&self, file: &'a str) -> Option<&'a str> {
        if self.single.is_some() {
            return None;
        }
        if self.prefix.len() > 1 {
            return Some(file.strip_prefix(self.prefix.as_str()).unwrap_or(file));
        }
        Some(file)
    }
}

/// The longest common prefix of `files` ending with `/` (empty when there is none).
fn common_directory(files: &[&str]) -> String {
    let Some((first, rest)) = files.split_first() else {
        return String::new();
    };
    let mut len = first.len();
    for file in rest {
        len = first
            .bytes()
            .zip(file.bytes())
            .take(len)
            .take_while(|(a, b)| a == b)
            .count();
    }
    // Bytes: the common prefix may end inside a character ('一' and '丏' share two bytes);
    // `/` is ASCII, so the cut after it is a character boundary.
    match first.as_bytes()[..len].iter().rposition(|&b| b == b'/') {
        Some(slash) => first[..=slash].to_owned(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_directories() {
        assert_eq!(
            common_directory(&["/var/log/app/app.log", "/var/log/app/gc.log"]),
            "/var/log/app/"
        );
        assert_eq!(
            common_directory(&["/var/log/app.log", "/var/log/apx.log"]),
            "/var/log/"
        );
        assert_eq!(common_directory(&["/a/x.log", "/b/y.log"]), "/");
        assert_eq!(common_directory(&["x.log", "y.log"]), "");
        assert_eq!(
            common_directory(&["/日志/一.log", "/日志/丏.log"]),
            "/日志/"
        );
    }
}
