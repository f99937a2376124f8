//! Places in a text and one-line messages, for errors about a file a person wrote
//! (a TOML settings file, say).

use std::fmt;

/// A place in a text: 1-based line and column, the column counted in characters.
///
/// Displayed as `line 4, column 7`, the form error messages use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineCol {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
}

impl LineCol {
    /// The place of byte `offset` in `text` (a parser's span start, say). An
    /// offset past the end is the end; one inside a character is that character.
    pub fn of(text: &str, offset: usize) -> LineCol {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        LineCol { line, column }
    }
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A message of several lines (a parser's, say) on one line: each line trimmed,
/// blank ones dropped, the rest joined with `; `.
pub fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn line_and_column() {
        let at = |text, offset| {
            let LineCol { line, column } = LineCol::of(text, offset);
            (line, column)
        };
        assert_eq!(at("ab\ncd", 0), (1, 1));
        assert_eq!(at("ab\ncd", 4), (2, 2));
        assert_eq!(at("ab", 99), (1, 3));
        assert_eq!(at("é\né", 5), (2, 2));
        assert_eq!(at("é\né", 4), (2, 1));
        // Inside a character: that character.
        assert_eq!(at("aé", 2), (1, 2));
        assert_eq!(LineCol::of("x\ny", 2).to_string(), "line 2, column 1");
    }

    #[test]
    fn messages_on_one_line() {
        assert_eq!(
            one_line("TOML parse error\n  |\n1 | x = \n  |     ^\n"),
            "TOML parse error; |; 1 | x =; |     ^"
        );
        assert_eq!(one_line("one"), "one");
        assert_eq!(one_line(""), "");
    }

    proptest! {
        #[test]
        fn any_offset_of_any_text_has_a_place(text in "(.|\n){0,40}", offset in 0usize..200) {
            let at = LineCol::of(&text, offset);
            prop_assert!(at.line >= 1 && at.line <= text.matches('\n').count() + 1);
            prop_assert!(at.column >= 1 && at.column <= text.chars().count() + 1);
        }
    }
}
