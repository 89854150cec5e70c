//! Candidate run-time addresses of a symbol, from System.map: what the
//! `ksplice_symbol` records keep-old-code and keep-new-code write carry so
//! that the core can check run-pre matching against the running kernel.

use crate::engine::elf::{SecId, SymId, SymSection};
use crate::engine::span::{Analysis, is_named};
use crate::engine::span::{HashMap, HashSet};
use crate::engine::sysmap::SystemMap;
use std::cell::RefCell;
use std::rc::Rc;

/// Candidate run-time addresses from System.map, with the part that depends
/// only on a symbol's section worked out once per section.
pub(super) struct Candidates<'a> {
    map: &'a SystemMap,
    /// Per (analysis, section): the System.map address of each named symbol
    /// of the section minus its offset, first occurrences in symbol table
    /// order.
    bases: RefCell<HashMap<SectionOf, Rc<[u64]>>>,
}

/// A section of an analysis (new code refers to both pre and post).
type SectionOf = (*const Analysis, SecId);

impl<'a> Candidates<'a> {
    pub(super) fn new(map: &'a SystemMap) -> Candidates<'a> {
        Candidates {
            map,
            bases: RefCell::new(HashMap::default()),
        }
    }

    /// Candidate run-time addresses of `sym`: by its own name when
    /// undefined, else through every named symbol of its section (each
    /// section base plus the symbol's offset, without repeats).
    /// The System.map addresses of the symbol called `name`.
    pub(super) fn named(&self, name: &str) -> Vec<u64> {
        self.map.get(name).to_vec()
    }

    pub(super) fn of(&self, a: &Analysis, sym: SymId) -> Vec<u64> {
        let obj = &a.obj;
        let s = &obj[sym];
        match s.section {
            SymSection::Absolute => vec![s.value],
            SymSection::Undefined | SymSection::Common => self.map.get(&s.name).to_vec(),
            SymSection::Section(sect) => {
                let key = (a as *const Analysis, sect);
                let bases = self.bases.borrow().get(&key).cloned();
                let bases = bases.unwrap_or_else(|| {
                    let b = self.section_bases(a, sect);
                    self.bases.borrow_mut().insert(key, b.clone());
                    b
                });
                // Adding the same offset keeps distinct bases distinct.
                bases.iter().map(|b| b.wrapping_add(s.value)).collect()
            }
        }
    }

    fn section_bases(&self, a: &Analysis, sect: SecId) -> Rc<[u64]> {
        let mut out: Vec<u64> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::default();
        for g in a.symbols_in(sect).iter().map(|&i| &a.obj.symbols[i]) {
            if g.is_file() || !is_named(g) {
                continue;
            }
            for &addr in self.map.get(&g.name) {
                let b = addr.wrapping_sub(g.value);
                if seen.insert(b) {
                    out.push(b);
                }
            }
        }
        out.into()
    }
}
