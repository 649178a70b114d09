//! Edits of a sequence (the lines of a `dfpipe.toml`, the tokens of a query), for the
//! fuzzers of `crates/views/tests/views/fuzz.rs` and `crates/engine/tests/fuzz.rs` (which includes
//! this file by path).

use proptest::prelude::*;

/// One edit of a sequence; indices wrap around its length.
#[derive(Debug, Clone)]
pub enum Edit<T> {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, T),
    Insert(usize, T),
}

/// Edits whose new items are drawn from `items`.
pub fn edit<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = Edit<T>> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Drop),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        (any::<usize>(), prop::sample::select(items)).prop_map(|(i, t)| Edit::Replace(i, t)),
        (any::<usize>(), prop::sample::select(items)).prop_map(|(i, t)| Edit::Insert(i, t)),
    ]
}

/// Applies `edit` to `items`, turning a new item into an element with `new`; `replace` says
/// what a replaced element becomes, from the old one and the new item.
pub fn apply<T: Clone, E: Clone>(
    items: &mut Vec<E>,
    edit: &Edit<T>,
    new: impl Fn(&T) -> E,
    replace: impl Fn(&E, &T) -> E,
) {
    let n = items.len().max(1);
    match edit {
        Edit::Insert(i, t) => items.insert(i % (items.len() + 1), new(t)),
        _ if items.is_empty() => {}
        Edit::Drop(i) => drop(items.remove(i % n)),
        Edit::Duplicate(i) => items.insert(i % n, items[i % n].clone()),
        Edit::Swap(a, b) => items.swap(a % n, b % n),
        Edit::Replace(i, t) => items[i % n] = replace(&items[i % n], t),
    }
}
