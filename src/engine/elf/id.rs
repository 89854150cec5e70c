//! Typed ids of the object model and the one renumbering helper.
//!
//! [`SecId`] names a section and [`SymId`] a symbol of one [`super::Object`]
//! by their position in its vectors. When sections or symbols are removed,
//! or copied into another object, an [`IdMap`] records where each old id
//! went (or that it is gone) and is applied to every reference, so that no
//! caller writes its own renumbering loop.

use std::fmt;
use std::marker::PhantomData;

/// A model id: a position in one of the object's vectors.
pub trait Id: Copy + Eq + Ord + std::hash::Hash + fmt::Debug {
    /// The id at position `index`.
    fn new(index: usize) -> Self;
    /// The position this id names.
    fn index(self) -> usize;
}

macro_rules! model_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The id at position `index` (ids are 32-bit, as ELF's are).
            pub const fn new(index: usize) -> $name {
                $name(index as u32)
            }
            /// The position this id names.
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl Id for $name {
            fn new(index: usize) -> $name {
                $name::new(index)
            }
            fn index(self) -> usize {
                $name::index(self)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

model_id!(
    /// A section of an object (its position in `Object::sections`).
    SecId
);
model_id!(
    /// A symbol of an object (its position in `Object::symbols`; the ELF
    /// null symbol is not in the model).
    SymId
);

/// Where each id of an old numbering went: a new id, or nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMap<I> {
    to: Vec<Option<I>>,
}

impl<I: Id> IdMap<I> {
    /// A map of `len` old ids that sends none anywhere yet (filled with
    /// [`IdMap::insert`] as items are copied into a new object).
    pub fn unmapped(len: usize) -> IdMap<I> {
        IdMap {
            to: vec![None; len],
        }
    }

    /// The compaction that keeps the ids for which `keep` is true, in order,
    /// numbered from 0.
    pub fn compact(keep: impl IntoIterator<Item = bool>) -> IdMap<I> {
        let mut next = 0;
        let to = keep
            .into_iter()
            .map(|k| {
                k.then(|| {
                    next += 1;
                    I::new(next - 1)
                })
            })
            .collect();
        IdMap { to }
    }

    /// Records that `old` is now `new`.
    pub fn insert(&mut self, old: I, new: I) {
        if let Some(slot) = self.to.get_mut(old.index()) {
            *slot = Some(new);
        }
    }

    /// The new id of `old`, `None` when it is gone (or out of range).
    pub fn get(&self, old: I) -> Option<I> {
        self.to.get(old.index()).copied().flatten()
    }

    /// True when `old` has a new id.
    pub fn contains(&self, old: I) -> bool {
        self.get(old).is_some()
    }

    /// True when every id keeps its place (nothing to renumber).
    pub fn is_identity(&self) -> bool {
        self.to
            .iter()
            .enumerate()
            .all(|(i, t)| t.map(I::index) == Some(i))
    }

    /// The items whose ids survive, in order (for a map made by
    /// [`IdMap::compact`], the new vector).
    pub fn retain<T>(&self, items: Vec<T>) -> Vec<T> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.contains(I::new(*i)))
            .map(|(_, t)| t)
            .collect()
    }
}

/// A table with one `T` per id of a numbering: indexed by the id, not by
/// a bare position (for example the per-section tables of an analysis,
/// `IdVec<SecId, T>`).
#[derive(Clone, PartialEq, Eq)]
pub struct IdVec<I, T> {
    items: Vec<T>,
    id: PhantomData<fn(I) -> I>,
}

impl<I: Id, T> IdVec<I, T> {
    /// The table of `items`, the first one for id 0.
    pub fn from_vec(items: Vec<T>) -> IdVec<I, T> {
        IdVec {
            items,
            id: PhantomData,
        }
    }

    /// A table of `len` copies of `value`.
    pub fn filled(len: usize, value: T) -> IdVec<I, T>
    where
        T: Clone,
    {
        IdVec::from_vec(vec![value; len])
    }

    /// The number of ids.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there is no id.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item of `id`, `None` when it is out of range.
    pub fn get(&self, id: I) -> Option<&T> {
        self.items.get(id.index())
    }

    /// The item of `id` to change, `None` when it is out of range.
    pub fn get_mut(&mut self, id: I) -> Option<&mut T> {
        self.items.get_mut(id.index())
    }

    /// The ids, in order.
    pub fn ids(&self) -> impl Iterator<Item = I> + use<I, T> {
        (0..self.items.len()).map(I::new)
    }

    /// The items, in id order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The items to change, in id order.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, T> {
        self.items.iter_mut()
    }

    /// Each id with its item, in order.
    pub fn iter_ids(&self) -> impl Iterator<Item = (I, &T)> {
        self.items.iter().enumerate().map(|(i, t)| (I::new(i), t))
    }

    /// Each id with its item to change, in order.
    pub fn iter_ids_mut(&mut self) -> impl Iterator<Item = (I, &mut T)> {
        self.items
            .iter_mut()
            .enumerate()
            .map(|(i, t)| (I::new(i), t))
    }
}

impl<I: Id, T> FromIterator<T> for IdVec<I, T> {
    fn from_iter<It: IntoIterator<Item = T>>(iter: It) -> IdVec<I, T> {
        IdVec::from_vec(iter.into_iter().collect())
    }
}

impl<I: Id, T> std::ops::Index<I> for IdVec<I, T> {
    type Output = T;
    fn index(&self, id: I) -> &T {
        &self.items[id.index()]
    }
}

impl<I: Id, T> std::ops::IndexMut<I> for IdVec<I, T> {
    fn index_mut(&mut self, id: I) -> &mut T {
        &mut self.items[id.index()]
    }
}

impl<'a, I: Id, T> IntoIterator for &'a IdVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<'a, I: Id, T> IntoIterator for &'a mut IdVec<I, T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter_mut()
    }
}

impl<I, T: fmt::Debug> fmt::Debug for IdVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.items.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_renumbers_kept_ids_in_order() {
        let m: IdMap<SecId> = IdMap::compact([true, false, true, true]);
        assert_eq!(m.get(SecId::new(0)), Some(SecId::new(0)));
        assert_eq!(m.get(SecId::new(1)), None);
        assert_eq!(m.get(SecId::new(2)), Some(SecId::new(1)));
        assert_eq!(m.get(SecId::new(3)), Some(SecId::new(2)));
        assert_eq!(m.get(SecId::new(9)), None);
        assert!(!m.is_identity());
        assert_eq!(m.retain(vec!['a', 'b', 'c', 'd']), vec!['a', 'c', 'd']);
        assert!(IdMap::<SymId>::compact([true, true]).is_identity());
    }

    #[test]
    fn insert_fills_an_unmapped_map() {
        let mut m: IdMap<SymId> = IdMap::unmapped(3);
        m.insert(SymId::new(2), SymId::new(0));
        m.insert(SymId::new(7), SymId::new(1));
        assert_eq!(m.get(SymId::new(2)), Some(SymId::new(0)));
        assert!(!m.contains(SymId::new(0)));
    }

    #[test]
    fn id_vec_is_indexed_by_its_ids() {
        let mut v: IdVec<SecId, char> = "abc".chars().collect();
        v[SecId::new(1)] = 'x';
        assert_eq!(v.len(), 3);
        assert_eq!(v.get(SecId::new(1)), Some(&'x'));
        assert_eq!(v.get(SecId::new(3)), None);
        let pairs: Vec<(SecId, char)> = v.iter_ids().map(|(i, c)| (i, *c)).collect();
        assert_eq!(pairs[2], (SecId::new(2), 'c'));
        assert_eq!(v.ids().last(), Some(SecId::new(2)));
        assert!(IdVec::<SymId, u8>::filled(0, 0).is_empty());
    }
}
