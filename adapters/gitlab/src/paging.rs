//! Integrity checks of an offset-paged list (`page`, `per_page`, `X-Next-Page`, `X-Total`).
//!
//! Offset pages are computed when each one is requested, so a list read page by page is not
//! a snapshot: an item deleted between two requests shifts every later item one place up
//! and one item is never seen; an item added shifts them down and one is seen twice. A list
//! that is cut short by the page cap, or whose pages disagree with each other or with the
//! counts GitLab sent, is an error here, never a silently short list. What cannot be
//! detected (a shift while GitLab sends no counts) is described in `docs/gitlab.md`.
//! Pure: the caller does the requests. Used by the adapter and by the check plugin.

use autoscaler_core::ports::{GitLabError, GitLabResult};

/// The paging headers of one answer (`None`: header absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageHeaders {
    /// `X-Page`.
    pub page: Option<u64>,
    /// `X-Per-Page`.
    pub per_page: Option<u64>,
    /// `X-Next-Page`: `Some(None)` when present and empty (no next page).
    pub next_page: Option<Option<u64>>,
    /// `X-Total` (GitLab leaves it out above 10,000 items or with `without_count`).
    pub total: Option<u64>,
    /// `X-Total-Pages`.
    pub total_pages: Option<u64>,
}

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Request this page.
    Page(u32),
    /// The list is complete and consistent.
    Done,
}

/// State of one list being read.
#[derive(Debug)]
pub struct OffsetListing {
    what: String,
    per_page: u64,
    max_pages: u32,
    /// Page expected next (starts at 1).
    page: u32,
    seen: std::collections::HashSet<u64>,
    /// `X-Total` / `X-Total-Pages` of page 1.
    total: Option<u64>,
    total_pages: Option<u64>,
}

impl OffsetListing {
    /// A list read with `per_page` items per page, at most `max_pages` pages.
    pub fn new(what: &str, per_page: u32, max_pages: u32) -> Self {
        OffsetListing {
            what: what.to_string(),
            per_page: u64::from(per_page),
            max_pages: max_pages.max(1),
            page: 1,
            seen: std::collections::HashSet::new(),
            total: None,
            total_pages: None,
        }
    }

    /// The page to request now.
    pub fn page(&self) -> u32 {
        self.page
    }

    fn fail(&self, message: String) -> GitLabError {
        GitLabError::Unexpected {
            what: self.what.clone(),
            message: format!("inconsistent listing, not used: {message}"),
        }
    }

    /// Takes the ids and headers of the page just read.
    ///
    /// # Errors
    ///
    /// `Unexpected` when the list is truncated by the page cap or inconsistent: a wrong
    /// `X-Page`, an id seen twice, `X-Total`/`X-Total-Pages` changing between pages or
    /// disagreeing with what was collected, a short page followed by a next page, or more
    /// items than `per_page` on one page.
    pub fn add(&mut self, ids: &[u64], h: PageHeaders) -> GitLabResult<Next> {
        let page = u64::from(self.page);
        if let Some(p) = h.page.filter(|p| *p != page) {
            return Err(self.fail(format!("asked for page {page}, got X-Page {p}")));
        }
        let per = h.per_page.unwrap_or(self.per_page).max(1);
        let n = u64::try_from(ids.len()).unwrap_or(u64::MAX);
        if n > per {
            return Err(self.fail(format!(
                "page {page} has {n} items, more than {per} per page"
            )));
        }
        if page == 1 {
            self.total = h.total;
            self.total_pages = h.total_pages;
        } else if (h.total, h.total_pages) != (self.total, self.total_pages) {
            return Err(self.fail(format!(
                "counts changed between pages (X-Total {} then {}, X-Total-Pages {} then {}): the list changed while it was read",
                shown(self.total),
                shown(h.total),
                shown(self.total_pages),
                shown(h.total_pages)
            )));
        }
        for id in ids {
            if !self.seen.insert(*id) {
                return Err(self.fail(format!(
                    "id {id} listed twice (page {page}): the list changed while it was read"
                )));
            }
        }
        let short = n < per;
        let more = match h.next_page {
            Some(Some(next)) => {
                if next != page + 1 {
                    return Err(self.fail(format!("page {page} names X-Next-Page {next}")));
                }
                if short {
                    return Err(self.fail(format!(
                        "page {page} has {n} of {per} items but X-Next-Page says more follow"
                    )));
                }
                true
            }
            Some(None) => false,
            None => !short,
        };
        if more {
            if self.page >= self.max_pages {
                return Err(self.fail(format!(
                    "truncated: more than {} pages of {per} (the adapter's page cap); the list is not complete",
                    self.max_pages
                )));
            }
            self.page += 1;
            return Ok(Next::Page(self.page));
        }
        let count = u64::try_from(self.seen.len()).unwrap_or(u64::MAX);
        if let Some(t) = self.total.filter(|t| *t != count) {
            return Err(self.fail(format!("collected {count} items, X-Total says {t}")));
        }
        if let Some(tp) = self.total_pages {
            let expected = count.div_ceil(per).max(1);
            // GitLab reports at least one page; an empty list may also say 0.
            if tp != expected && !(count == 0 && tp == 0) {
                return Err(self.fail(format!(
                    "collected {count} items ({expected} pages of {per}), X-Total-Pages says {tp}"
                )));
            }
        }
        Ok(Next::Done)
    }
}

fn shown(v: Option<u64>) -> String {
    v.map_or_else(|| "absent".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(total: u64, per: u64, next: Option<u64>) -> PageHeaders {
        PageHeaders {
            page: None,
            per_page: Some(per),
            next_page: Some(next),
            total: Some(total),
            total_pages: Some(total.div_ceil(per).max(1)),
        }
    }

    fn ids(range: std::ops::Range<u64>) -> Vec<u64> {
        range.collect()
    }

    #[test]
    fn a_consistent_list_with_counts_completes() {
        let mut l = OffsetListing::new("runners", 2, 10);
        assert_eq!(l.add(&ids(1..3), counted(5, 2, Some(2))), Ok(Next::Page(2)));
        assert_eq!(l.add(&ids(3..5), counted(5, 2, Some(3))), Ok(Next::Page(3)));
        assert_eq!(l.add(&ids(5..6), counted(5, 2, None)), Ok(Next::Done));
    }

    #[test]
    fn a_list_without_count_headers_ends_at_a_short_page() {
        let mut l = OffsetListing::new("runners", 2, 10);
        let h = PageHeaders::default();
        assert_eq!(l.add(&ids(1..3), h), Ok(Next::Page(2)));
        assert_eq!(l.add(&ids(3..4), h), Ok(Next::Done));
    }

    #[test]
    fn reaching_the_page_cap_with_more_to_come_is_an_error() {
        let mut l = OffsetListing::new("runners", 2, 2);
        let h = PageHeaders::default();
        assert_eq!(l.add(&ids(1..3), h), Ok(Next::Page(2)));
        let err = l.add(&ids(3..5), h);
        assert!(
            matches!(&err, Err(GitLabError::Unexpected { message, .. }) if message.contains("truncated")),
            "{err:?}"
        );
    }

    #[test]
    fn a_count_changing_between_pages_is_an_error() {
        let mut l = OffsetListing::new("runners", 2, 10);
        assert_eq!(l.add(&ids(1..3), counted(5, 2, Some(2))), Ok(Next::Page(2)));
        // One item deleted before page 2: everything shifted up by one.
        let err = l.add(&[4, 5], counted(4, 2, None));
        assert!(
            matches!(&err, Err(GitLabError::Unexpected { message, .. }) if message.contains("counts changed")),
            "{err:?}"
        );
    }

    #[test]
    fn an_id_on_two_pages_is_an_error() {
        let mut l = OffsetListing::new("runners", 2, 10);
        let h = PageHeaders::default();
        assert_eq!(l.add(&[1, 2], h), Ok(Next::Page(2)));
        let err = l.add(&[2, 3], h);
        assert!(
            matches!(&err, Err(GitLabError::Unexpected { message, .. }) if message.contains("id 2 listed twice")),
            "{err:?}"
        );
    }

    #[test]
    fn a_short_page_followed_by_a_next_page_is_an_error() {
        let mut l = OffsetListing::new("runners", 2, 10);
        let h = PageHeaders {
            next_page: Some(Some(2)),
            ..PageHeaders::default()
        };
        assert!(l.add(&[1], h).is_err());
    }

    #[test]
    fn counts_disagreeing_with_what_was_collected_are_an_error() {
        let mut l = OffsetListing::new("runners", 2, 10);
        // Says 3 items, but page 1 is also the last page.
        assert!(l.add(&[1, 2], counted(3, 2, None)).is_err());
        let mut l = OffsetListing::new("runners", 2, 10);
        let h = PageHeaders {
            total_pages: Some(3),
            next_page: Some(None),
            ..PageHeaders::default()
        };
        assert!(l.add(&[1, 2], h).is_err());
        let mut l = OffsetListing::new("runners", 2, 10);
        assert_eq!(l.add(&[], counted(0, 2, None)), Ok(Next::Done));
    }

    #[test]
    fn a_wrong_page_number_is_an_error() {
        let mut l = OffsetListing::new("runners", 2, 10);
        let h = PageHeaders {
            page: Some(2),
            ..PageHeaders::default()
        };
        assert!(l.add(&[1, 2], h).is_err());
    }
}
