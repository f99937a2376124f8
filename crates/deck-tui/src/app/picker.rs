//! The picker behind the deck's `:` key, beside the other prompts: its pure
//! model (a query and a highlighted row among the bookmarks that match it).

use crate::bookmarks::Bookmark;

/// The picker behind the deck's `:` key: a query and a highlighted row among the
/// bookmarks that match it. Pure; the renderer draws it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picker {
    /// What the operator typed; matches names and addresses, case-insensitively.
    pub query: String,
    /// The highlighted row among [`Picker::filtered`] (clamped when read).
    pub selected: usize,
}

impl Picker {
    /// An empty query with the first row highlighted.
    pub fn new() -> Picker {
        Picker::default()
    }

    /// The bookmarks whose name or address contains the query, ignoring case, in
    /// file order (all of them for an empty query).
    pub fn filtered<'a>(&self, items: &'a [Bookmark]) -> Vec<&'a Bookmark> {
        let query = self.query.to_lowercase();
        items
            .iter()
            .filter(|b| {
                b.name.to_lowercase().contains(&query) || b.address.to_lowercase().contains(&query)
            })
            .collect()
    }

    /// The highlighted row within [`Picker::filtered`]; `None` when nothing matches.
    pub fn selected_index(&self, items: &[Bookmark]) -> Option<usize> {
        let len = self.filtered(items).len();
        (len > 0).then(|| self.selected.min(len - 1))
    }

    /// The highlighted bookmark; `None` when nothing matches.
    pub fn chosen<'a>(&self, items: &'a [Bookmark]) -> Option<&'a Bookmark> {
        let index = self.selected_index(items)?;
        self.filtered(items).get(index).copied()
    }

    /// Highlights the row above (stays on the first).
    pub fn up(&mut self, items: &[Bookmark]) {
        self.selected = self.selected_index(items).unwrap_or(0).saturating_sub(1);
    }

    /// Highlights the row below (stays on the last).
    pub fn down(&mut self, items: &[Bookmark]) {
        let len = self.filtered(items).len();
        self.selected = match self.selected_index(items) {
            Some(i) => (i + 1).min(len - 1),
            None => 0,
        };
    }

    /// Appends `c` to the query and highlights the first match.
    pub fn push(&mut self, c: char) {
        self.query.push(c);
        self.selected = 0;
    }

    /// Deletes the query's last character and highlights the first match.
    pub fn pop(&mut self) {
        self.query.pop();
        self.selected = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn bm(name: &str, address: &str) -> Bookmark {
        Bookmark {
            name: name.to_owned(),
            address: address.to_owned(),
            cluster_key: PathBuf::from(format!("/keys/{name}.cluster")),
            operator_key: None,
        }
    }

    #[test]
    fn picker_filters_case_insensitively_on_name_and_address() {
        let items = vec![
            bm("Lab", "127.0.0.1:7000"),
            bm("prod", "PROD-1.example:7000"),
            bm("edge", "10.0.0.9:7100"),
        ];
        let names =
            |p: &Picker| p.filtered(&items).iter().map(|b| b.name.clone()).collect::<Vec<_>>();
        let mut p = Picker::new();
        assert_eq!(names(&p), ["Lab", "prod", "edge"]);
        p.query = "LAB".into();
        assert_eq!(names(&p), ["Lab"]);
        p.query = "7000".into();
        assert_eq!(names(&p), ["Lab", "prod"]);
        p.query = "prod-1".into();
        assert_eq!(names(&p), ["prod"]);
        p.query = "nothing".into();
        assert!(names(&p).is_empty());
        assert_eq!(p.chosen(&items), None);
        assert_eq!(p.selected_index(&items), None);
    }

    #[test]
    fn picker_selection_stays_in_range() {
        let items = vec![bm("a1", "h:1"), bm("a2", "h:2"), bm("b", "h:3")];
        let mut p = Picker::new();
        p.up(&items);
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        for _ in 0..5 {
            p.down(&items);
        }
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (2, Some("b")));
        // Narrowing the query clamps a stale selection when read and when moving.
        p.query = "a".into();
        assert_eq!(p.chosen(&items).map(|b| b.name.as_str()), Some("a2"));
        p.up(&items);
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        p.down(&items);
        p.push('1');
        assert_eq!((p.selected, p.chosen(&items).map(|b| b.name.as_str())), (0, Some("a1")));
        p.pop();
        p.pop();
        assert_eq!(p.query, "");
        p.down(&[]);
        p.up(&[]);
        assert_eq!((p.selected, p.chosen(&[])), (0, None));
    }
}
