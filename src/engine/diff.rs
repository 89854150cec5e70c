//! The differencing engine: which spans of the object changed between the
//! build before the patch (pre) and the build after it (post).
//!
//! Spans are matched (global symbols by name, strings by content, local and
//! compiler-made symbols by stem, then labels, then table entries by what
//! they describe), then matched pairs are compared: bytes outside relocated
//! fields must be equal and relocations must point to matched targets at
//! the same offsets. A pair that differs is patched (functions), patched in
//! place (read-only data, BUG line numbers) or unmatched, which can make its
//! referrers differ in turn: the comparison runs to a fixed point.

use crate::engine::classify::Kind;
use crate::engine::elf::{IdVec, Reloc, SecId, SymId, SymSection, howto};
pub use crate::engine::span::SpanId;
use crate::engine::span::{Analysis, is_named};
use crate::engine::tables;
use std::collections::{HashMap, VecDeque};

mod verdict;
pub use verdict::{Change, Fate, RelocCause};

/// A change that cannot take effect by replacing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The symbol (or label) of the data.
    pub symbol: String,
    /// Its section.
    pub section: String,
    /// Why it differs.
    pub reason: Change,
    /// The post span.
    pub span: SpanId,
}

/// The result of comparing pre and post.
#[derive(Debug)]
pub struct Diff {
    /// The pre object.
    pub old: Analysis,
    /// The post object.
    pub new: Analysis,
    /// Counterpart in post of each pre span.
    pub old_match: IdVec<SecId, Vec<Option<SpanId>>>,
    /// Counterpart in pre of each post span.
    pub new_match: IdVec<SecId, Vec<Option<SpanId>>>,
    /// Fate of each post span (pre spans with no counterpart are deleted:
    /// see [`Diff::deleted`]).
    pub fates: IdVec<SecId, Vec<Fate>>,
    /// Changes to writable data, in the order found (a refused span that
    /// a changed table entry later unmatches stays listed).
    pub refused: Vec<Refusal>,
}

/// A name with GCC's numeric suffixes removed (`foo.isra.0` -> `foo.isra`,
/// `count.3` -> `count`); clones and static locals get new numbers from one
/// build to the next.
pub fn stem(name: &str) -> &str {
    let mut s = name;
    while let Some((head, tail)) = s.rsplit_once('.') {
        if !head.is_empty() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
            s = head;
        } else {
            break;
        }
    }
    s
}

impl Diff {
    fn new(old: Analysis, new: Analysis) -> Diff {
        let shape = |a: &Analysis| {
            a.spans
                .iter()
                .map(|v| vec![None; v.len()])
                .collect::<IdVec<_, _>>()
        };
        Diff {
            old_match: shape(&old),
            new_match: shape(&new),
            fates: new
                .spans
                .iter()
                .map(|v| vec![Fate::default(); v.len()])
                .collect(),
            refused: Vec::new(),
            old,
            new,
        }
    }

    /// The fate of post span `n`.
    pub fn fate(&self, n: SpanId) -> Fate {
        self.fates[n.0][n.1]
    }

    /// Gives unchanged post span `n` the fate `fate`; true when that is
    /// news (a span keeps the first change found).
    fn mark(&mut self, n: SpanId, fate: Fate) -> bool {
        let f = &mut self.fates[n.0][n.1];
        if *f != Fate::Unchanged {
            return false;
        }
        *f = fate;
        true
    }

    /// Turns the refused changes to writable data that keep their size (and
    /// their counterpart) into in-place rewrites: the update writes the new
    /// bytes over the running instance once run-pre matching has found it
    /// equal to the build before the patch. What cannot be rewritten stays
    /// refused. Returns the post spans now rewritten.
    pub fn rewrite_writable_in_place(&mut self) -> Vec<SpanId> {
        let mut rewritten = Vec::new();
        let mut kept = Vec::new();
        for r in std::mem::take(&mut self.refused) {
            let n = r.span;
            let same_size = self
                .matched_old(n)
                .is_some_and(|o| self.old.span(o).contents_size == self.new.span(n).contents_size);
            match self.fate(n) {
                Fate::Refused(c) if same_size => {
                    self.fates[n.0][n.1] = Fate::PatchedInPlace(c);
                    rewritten.push(n);
                }
                _ => kept.push(r),
            }
        }
        self.refused = kept;
        rewritten
    }

    /// The pre spans of writable data the new code rewrites in place.
    pub fn rewritten_old(&self) -> Vec<SpanId> {
        self.new
            .spans
            .iter_ids()
            .flat_map(|(sect, spans)| (0..spans.len()).map(move |k| (sect, k)))
            .filter(|&n| self.new.kinds[n.0] == Kind::Data && self.fate(n).is_patched_in_place())
            .filter_map(|n| self.matched_old(n))
            .collect()
    }

    /// The pre span matched to post span `n`.
    pub fn matched_old(&self, n: SpanId) -> Option<SpanId> {
        self.new_match[n.0][n.1]
    }

    fn pair(&mut self, o: SpanId, n: SpanId) {
        if self.old_match[o.0][o.1].is_some() || self.new_match[n.0][n.1].is_some() {
            return;
        }
        self.old_match[o.0][o.1] = Some(n);
        self.new_match[n.0][n.1] = Some(o);
        // A table entry brings the piece of its "other" section with it.
        let name = &self.new.obj.sections[n.0].name;
        if let Some(t) = tables::table(name)
            && let (Some(off), Some(_)) = (t.other_offset, t.other_sect)
            && !t.other_is_empty(&self.new.obj.sections[n.0], self.new.span(n).start)
        {
            let os = self.old.span(o).start + off;
            let ns = self.new.span(n).start + off;
            let ot = self
                .old
                .reloc_at(o.0, os)
                .and_then(|r| self.old.reloc_target_span(o.0, r));
            let nt = self
                .new
                .reloc_at(n.0, ns)
                .and_then(|r| self.new.reloc_target_span(n.0, r));
            if let (Some(ot), Some(nt)) = (ot, nt) {
                self.pair(ot, nt);
            }
        }
    }

    fn unpair(&mut self, n: SpanId) {
        if let Some(o) = self.new_match[n.0][n.1].take() {
            self.old_match[o.0][o.1] = None;
        }
        let f = &mut self.fates[n.0][n.1];
        // A refused span stays in `refused`; a new one is already unmatched.
        if !matches!(f, Fate::New) {
            *f = Fate::Unchanged;
        }
    }

    fn span_of_symbol(a: &Analysis, sym: SymId) -> Option<SpanId> {
        let s = &a.obj.symbols[sym];
        let SymSection::Section(sect) = s.section else {
            return None;
        };
        a.find_span(sect, s.value).map(|k| (sect, k))
    }

    fn matchable_kind(k: Kind) -> bool {
        !matches!(k, Kind::Special | Kind::Export | Kind::Ignored)
    }

    /// Global symbols by name.
    fn match_globals(&mut self) {
        let mut new_globals: HashMap<&str, SymId> = HashMap::new();
        for (i, s) in self.new.obj.symbols_with_ids() {
            if s.is_global() && !s.section.is_const() {
                new_globals.entry(s.name.as_str()).or_insert(i);
            }
        }
        let mut pairs = Vec::new();
        for (i, s) in self.old.obj.symbols_with_ids() {
            if !s.is_global() || s.section.is_const() {
                continue;
            }
            let Some(&j) = new_globals.get(s.name.as_str()) else {
                continue;
            };
            let (Some(o), Some(n)) = (
                Self::span_of_symbol(&self.old, i),
                Self::span_of_symbol(&self.new, j),
            ) else {
                continue;
            };
            if self.old.kinds[o.0] == self.new.kinds[n.0]
                && Self::matchable_kind(self.new.kinds[n.0])
            {
                pairs.push((o, n));
            }
        }
        for (o, n) in pairs {
            self.pair(o, n);
        }
    }

    fn string_of(a: &Analysis, id: SpanId) -> &[u8] {
        let sp = a.span(id);
        let data = &a.obj.sections[id.0].data;
        let lo = sp.start as usize;
        let hi = (sp.start + sp.contents_size) as usize;
        data.get(lo..hi).unwrap_or(&[])
    }

    /// Strings by content: first inside sections of the same name, then anywhere.
    fn match_strings(&mut self) {
        for by_section in [true, false] {
            let mut olds: HashMap<(Option<&str>, &[u8]), VecDeque<SpanId>> = HashMap::new();
            for (sect, spans) in self.old.spans.iter_ids() {
                if self.old.kinds[sect] != Kind::String {
                    continue;
                }
                let name = by_section.then_some(self.old.obj.sections[sect].name.as_str());
                for k in 0..spans.len() {
                    if self.old_match[sect][k].is_none() {
                        olds.entry((name, Self::string_of(&self.old, (sect, k))))
                            .or_default()
                            .push_back((sect, k));
                    }
                }
            }
            let mut pairs = Vec::new();
            for (sect, spans) in self.new.spans.iter_ids() {
                if self.new.kinds[sect] != Kind::String {
                    continue;
                }
                let name = by_section.then_some(self.new.obj.sections[sect].name.as_str());
                for k in 0..spans.len() {
                    if self.new_match[sect][k].is_some() {
                        continue;
                    }
                    if let Some(q) = olds.get_mut(&(name, Self::string_of(&self.new, (sect, k))))
                        && let Some(o) = q.pop_front()
                    {
                        pairs.push((o, (sect, k)));
                    }
                }
            }
            for (o, n) in pairs {
                self.pair(o, n);
            }
        }
    }

    /// The key local symbols are matched by: stem, kind, and for static
    /// locals the section that refers to them.
    fn local_key(a: &Analysis, sym: SymId) -> Option<(String, Kind)> {
        let s = &a.obj.symbols[sym];
        if s.is_global() || !is_named(s) || s.is_file() {
            return None;
        }
        let SymSection::Section(sect) = s.section else {
            return None;
        };
        let kind = a.kinds[sect];
        if !Self::matchable_kind(kind) || kind == Kind::String {
            return None;
        }
        let st = stem(&s.name);
        if s.kind == object::elf::STT_OBJECT && st != s.name {
            Some((format!("{st}<{}>", a.caller(sect, s.value)), kind))
        } else {
            Some((st.to_string(), kind))
        }
    }

    /// Local and compiler-made symbols by stem; ambiguous stems by content.
    fn match_locals(&mut self) {
        // Spans of each side by local key, each span once.
        let by_key = |a: &Analysis| {
            let mut m: HashMap<(String, Kind), Vec<SpanId>> = HashMap::new();
            for i in a.obj.symbol_ids() {
                if let (Some(key), Some(id)) = (Self::local_key(a, i), Self::span_of_symbol(a, i)) {
                    let v = m.entry(key).or_default();
                    if !v.contains(&id) {
                        v.push(id);
                    }
                }
            }
            m
        };
        let mut groups: HashMap<(String, Kind), (Vec<SpanId>, Vec<SpanId>)> = HashMap::new();
        for (key, olds) in by_key(&self.old) {
            groups.entry(key).or_default().0 = olds;
        }
        for (key, news) in by_key(&self.new) {
            groups.entry(key).or_default().1 = news;
        }
        let mut keys: Vec<_> = groups.keys().cloned().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        for key in keys {
            let (olds, news) = groups[&key].clone();
            let olds: Vec<_> = olds
                .into_iter()
                .filter(|o| self.old_match[o.0][o.1].is_none())
                .collect();
            let news: Vec<_> = news
                .into_iter()
                .filter(|n| self.new_match[n.0][n.1].is_none())
                .collect();
            if olds.len() == 1 && news.len() == 1 {
                self.pair(olds[0], news[0]);
                continue;
            }
            // Several clones of one function: pair those with equal bytes.
            for &n in &news {
                if let Some(&o) = olds.iter().find(|o| {
                    self.old_match[o.0][o.1].is_none() && self.nonrelocs_equal(**o, n).is_none()
                }) {
                    self.pair(o, n);
                }
            }
        }
    }

    /// Remaining spans by identical label.
    fn match_labels(&mut self) {
        let mut olds: HashMap<&str, SpanId> = HashMap::new();
        for (sect, spans) in self.old.spans.iter_ids() {
            let k = self.old.kinds[sect];
            let name = &self.old.obj.sections[sect].name;
            // Strings go by content, table entries and the pieces they point
            // to by what they describe: their offset-based labels mean nothing.
            if k == Kind::String || tables::table(name).is_some() || tables::is_table_other(name) {
                continue;
            }
            for (i, sp) in spans.iter().enumerate() {
                if self.old_match[sect][i].is_none() {
                    olds.entry(sp.label.as_str()).or_insert((sect, i));
                }
            }
        }
        let mut pairs = Vec::new();
        for (sect, spans) in self.new.spans.iter_ids() {
            for (i, sp) in spans.iter().enumerate() {
                if self.new_match[sect][i].is_none()
                    && let Some(&o) = olds.get(sp.label.as_str())
                    && self.old.kinds[o.0] == self.new.kinds[sect]
                {
                    pairs.push((o, (sect, i)));
                }
            }
        }
        for (o, n) in pairs {
            self.pair(o, n);
        }
    }

    /// The span and offset an entry's address field points to.
    fn entry_target(a: &Analysis, id: SpanId, addr: u64) -> Option<(SpanId, u64)> {
        let r = a.reloc_at(id.0, a.span(id).start + addr)?;
        let (ts, toff) = a.reloc_target(id.0, r)?;
        let k = a.find_span(ts, toff)?;
        Some(((ts, k), toff.wrapping_sub(a.spans[ts][k].start)))
    }

    /// Table entries by the (matched) code they describe.
    fn match_tables(&mut self) {
        // The first pre section of each table name (one per export: an
        // index, not a search per section).
        let mut old_tables: HashMap<String, SecId> = HashMap::new();
        for (i, s) in self.old.obj.sections_with_ids() {
            if tables::table(&s.name).is_some() {
                old_tables.entry(s.name.clone()).or_insert(i);
            }
        }
        for sect in self.new.spans.ids() {
            let name = self.new.obj.sections[sect].name.clone();
            let Some(t) = tables::table(&name) else {
                continue;
            };
            let Some(addr) = t.addr_offset else { continue };
            let Some(&osect) = old_tables.get(&name) else {
                continue;
            };
            let mut olds: HashMap<(SpanId, u64), VecDeque<usize>> = HashMap::new();
            for k in 0..self.old.spans[osect].len() {
                if let Some(key) = Self::entry_target(&self.old, (osect, k), addr) {
                    olds.entry(key).or_default().push_back(k);
                }
            }
            for k in 0..self.new.spans[sect].len() {
                let Some((nt, off)) = Self::entry_target(&self.new, (sect, k), addr) else {
                    continue;
                };
                let Some(ot) = self.new_match[nt.0][nt.1] else {
                    continue;
                };
                if let Some(q) = olds.get_mut(&(ot, off)) {
                    while let Some(ok) = q.pop_front() {
                        if self.old_match[osect][ok].is_none() {
                            self.pair((osect, ok), (sect, k));
                            break;
                        }
                    }
                }
            }
        }
    }

    /// None when the bytes outside relocated fields are equal, else the
    /// first difference.
    fn nonrelocs_equal(&self, o: SpanId, n: SpanId) -> Option<Change> {
        let os = self.old.span(o);
        let ns = self.new.span(n);
        if os.contents_size != ns.contents_size {
            return Some(Change::Size {
                old: os.contents_size,
                new: ns.contents_size,
            });
        }
        let osec = &self.old.obj.sections[o.0];
        let nsec = &self.new.obj.sections[n.0];
        if osec.sh_type == object::elf::SHT_NOBITS || nsec.sh_type == object::elf::SHT_NOBITS {
            return (osec.sh_type != nsec.sh_type).then_some(Change::Bytes { offset: 0 });
        }
        let a = osec
            .data
            .get(os.start as usize..(os.start + os.contents_size) as usize)
            .unwrap_or(&[]);
        let b = nsec
            .data
            .get(ns.start as usize..(ns.start + ns.contents_size) as usize)
            .unwrap_or(&[]);
        if a == b {
            return None;
        }
        (0..a.len().min(b.len()))
            .find(|&i| {
                a[i] != b[i]
                    && !(self.old.part_of_reloc(o.0, os.start + i as u64)
                        && self.new.part_of_reloc(n.0, ns.start + i as u64))
            })
            .map(|i| Change::Bytes { offset: i as u64 })
    }

    /// Whether two relocations point to the same thing; else what differs.
    fn relocs_equal(&self, o: SpanId, ro: &Reloc, n: SpanId, rn: &Reloc) -> Result<(), RelocCause> {
        let os = self.old.span(o);
        let ns = self.new.span(n);
        if ro.offset - os.start != rn.offset - ns.start {
            return Err(RelocCause::Position);
        }
        if ro.r_type != rn.r_type {
            return Err(RelocCause::Type);
        }
        // A pointer to a zero-length piece points to nothing in particular.
        if let Some(t) = tables::table(&self.new.obj.sections[n.0].name)
            && t.other_offset == Some(rn.offset - ns.start)
            && t.other_is_empty(&self.old.obj.sections[o.0], os.start)
            && t.other_is_empty(&self.new.obj.sections[n.0], ns.start)
        {
            return Ok(());
        }
        // Bits of the field the relocation does not replace must agree.
        if let Ok(h) = howto::howto(ro.r_type) {
            let a = self.old.obj.sections[o.0]
                .read_uint(ro.offset, h.size as usize)
                .unwrap_or(0);
            let b = self.new.obj.sections[n.0]
                .read_uint(rn.offset, h.size as usize)
                .unwrap_or(0);
            if a & !h.dst_mask != b & !h.dst_mask {
                return Err(RelocCause::FieldBits);
            }
        }
        let so = &self.old.obj.symbols[ro.sym];
        let sn = &self.new.obj.symbols[rn.sym];
        let oo = self.old.target_offset(o.0, ro);
        let no = self.new.target_offset(n.0, rn);
        let check = |equal: bool, cause| if equal { Ok(()) } else { Err(cause) };
        match (so.section, sn.section) {
            (SymSection::Undefined, SymSection::Undefined) => {
                check(so.name == sn.name, RelocCause::TargetChanged)?;
                check(oo == no, RelocCause::Addend)
            }
            (SymSection::Absolute, SymSection::Absolute) => check(
                so.value.wrapping_add(oo as u64) == sn.value.wrapping_add(no as u64),
                RelocCause::AbsoluteValue,
            ),
            (SymSection::Section(_), SymSection::Section(_)) => {
                self.section_targets_equal(o, ro, n, rn)
            }
            _ => Err(RelocCause::TargetKind),
        }
    }

    /// Whether two relocations to defined symbols point to matched spans
    /// at the same offset inside them.
    fn section_targets_equal(
        &self,
        o: SpanId,
        ro: &Reloc,
        n: SpanId,
        rn: &Reloc,
    ) -> Result<(), RelocCause> {
        let (Some(ot), Some(nt)) = (
            self.old.reloc_target_span(o.0, ro),
            self.new.reloc_target_span(n.0, rn),
        ) else {
            return Err(RelocCause::TargetUnknown);
        };
        if self.old_match[ot.0][ot.1] != Some(nt) {
            return Err(if self.new_match[nt.0][nt.1].is_none() {
                RelocCause::TargetUnmatched
            } else {
                RelocCause::TargetChanged
            });
        }
        let (Some((_, oa)), Some((_, na))) = (
            self.old.reloc_target(o.0, ro),
            self.new.reloc_target(n.0, rn),
        ) else {
            return Err(RelocCause::TargetUnknown);
        };
        let od = oa.wrapping_sub(self.old.span(ot).start);
        let nd = na.wrapping_sub(self.new.span(nt).start);
        // Named-symbol relocations carry their offset in the addend.
        let named_offset = |a: &Analysis, sect: SecId, r: &Reloc, d: u64| {
            if a.obj.symbols[r.sym].is_section() {
                d
            } else {
                d.wrapping_add(a.target_offset(sect, r) as u64)
            }
        };
        let od = named_offset(&self.old, o.0, ro, od);
        let nd = named_offset(&self.new, n.0, rn, nd);
        if od != nd {
            return Err(RelocCause::TargetOffset);
        }
        // A reference into the middle of a replaced function cannot be kept.
        if od != 0 && self.fate(nt).is_patched() {
            return Err(RelocCause::IntoPatchedFunction);
        }
        Ok(())
    }

    fn relocs_differ(&self, o: SpanId, n: SpanId) -> Option<Change> {
        let os = self.old.span(o);
        let ns = self.new.span(n);
        let ro = self.old.relocs_in(o.0, os.start, os.size);
        let rn = self.new.relocs_in(n.0, ns.start, ns.size);
        for (a, b) in ro.iter().zip(rn) {
            if let Err(cause) = self.relocs_equal(o, a, n, b) {
                return Some(Change::Relocation {
                    offset: b.offset - ns.start,
                    cause,
                });
            }
        }
        let at = ro.len().min(rn.len());
        if let Some(r) = rn.get(at) {
            return Some(Change::Relocation {
                offset: r.offset - ns.start,
                cause: RelocCause::Extra,
            });
        }
        ro.get(at).map(|r| Change::Relocation {
            offset: r.offset - os.start,
            cause: RelocCause::Missing,
        })
    }

    /// One comparison round over matched pairs; true when anything changed.
    fn compare_round(&mut self) -> bool {
        let mut changed = false;
        for sect in self.new.spans.ids() {
            let kind = self.new.kinds[sect];
            if matches!(kind, Kind::Ignored | Kind::Ksplice) {
                continue;
            }
            for k in 0..self.new.spans[sect].len() {
                let n = (sect, k);
                let Some(o) = self.new_match[sect][k] else {
                    continue;
                };
                let bytes = self.nonrelocs_equal(o, n);
                let relocs = self.relocs_differ(o, n);
                let Some(change) = bytes.or(relocs) else {
                    continue;
                };
                changed |= self.act(o, n, kind, change, relocs.is_none());
            }
        }
        changed
    }

    /// Decides what a differing pair becomes; true when that is news.
    fn act(
        &mut self,
        o: SpanId,
        n: SpanId,
        kind: Kind,
        change: Change,
        relocs_equal: bool,
    ) -> bool {
        crate::util::log::debug(|| format!("{}: {change}", self.new.span(n).label));
        let same_size = self.old.span(o).contents_size == self.new.span(n).contents_size;
        match kind {
            Kind::Text => self.mark(n, Fate::Patched(change)),
            Kind::BugTable if relocs_equal => self.mark(n, Fate::BugLineOnly(change)),
            Kind::Rodata if same_size => self.mark(n, Fate::PatchedInPlace(change)),
            Kind::Data => {
                self.refuse(n, change);
                false
            }
            Kind::Special => {
                self.table_entry_changed(n);
                self.unpair(n);
                true
            }
            _ => {
                self.unpair(n);
                true
            }
        }
    }

    /// Writable data keeps its running instance: the change cannot take
    /// effect by replacing code. It is reported as refused (the caller
    /// decides whether that is fatal) and the pair stays matched, so new
    /// code goes on using the running instance.
    fn refuse(&mut self, n: SpanId, change: Change) {
        if !self.mark(n, Fate::Refused(change)) {
            return;
        }
        let sp = self.new.span(n);
        let symbol = sp
            .symbol
            .filter(|&s| is_named(&self.new.obj.symbols[s]))
            .map(|s| self.new.obj.symbols[s].name.clone());
        self.refused.push(Refusal {
            symbol: symbol.unwrap_or_else(|| sp.label.clone()),
            section: self.new.obj.sections[n.0].name.clone(),
            reason: change,
            span: n,
        });
    }

    /// A changed table entry `n`: the code it describes changes too.
    fn table_entry_changed(&mut self, n: SpanId) {
        if let Some(t) = tables::table(&self.new.obj.sections[n.0].name)
            && let Some(addr) = t.addr_offset
            && let Some((nt, _)) = Self::entry_target(&self.new, n, addr)
            && self.new_match[nt.0][nt.1].is_some()
        {
            if self.new.kinds[nt.0] == Kind::Text {
                self.mark(
                    nt,
                    Fate::Patched(Change::Relocation {
                        offset: 0,
                        cause: RelocCause::TableEntryChanged,
                    }),
                );
            } else {
                self.unpair(nt);
            }
        }
    }

    /// New and changed code must not refer into the middle of a function it
    /// does not replace.
    fn nonzero_offsets(&mut self) -> bool {
        let mut to_patch = Vec::new();
        for sect in self.new.spans.ids() {
            if matches!(self.new.kinds[sect], Kind::Special | Kind::Ignored) {
                continue;
            }
            for k in 0..self.new.spans[sect].len() {
                let f = self.fate((sect, k));
                if !(f.is_new() || f.is_patched()) {
                    continue;
                }
                let sp = &self.new.spans[sect][k];
                for r in self.new.relocs_in(sect, sp.start, sp.size) {
                    if let Some(t) = self.kept_function_entered_midway(sect, r) {
                        to_patch.push(t);
                    }
                }
            }
        }
        let mut changed = false;
        for t in to_patch {
            let change = Change::Relocation {
                offset: 0,
                cause: RelocCause::ReferredAtNonzeroOffset,
            };
            if self.mark(t, Fate::Patched(change)) {
                crate::util::log::debug(|| {
                    format!(
                        "{}: referred to at a nonzero offset",
                        self.new.span(t).label
                    )
                });
                changed = true;
            }
        }
        changed
    }

    /// The matched, unchanged function relocation `r` of post section
    /// `sect` refers into the middle of, if any. (An unmatched one is new:
    /// the new code carries it whole.)
    fn kept_function_entered_midway(&self, sect: SecId, r: &Reloc) -> Option<SpanId> {
        let t = self.new.reloc_target_span(sect, r)?;
        let (_, off) = self.new.reloc_target(sect, r)?;
        let off = if self.new.obj.symbols[r.sym].is_section() {
            off
        } else {
            off.wrapping_add(self.new.target_offset(sect, r) as u64)
        };
        (off != self.new.span(t).start
            && self.new.kinds[t.0] == Kind::Text
            && self.new_match[t.0][t.1].is_some()
            && self.fate(t) == Fate::Unchanged)
            .then_some(t)
    }

    fn mark_new(&mut self) -> bool {
        let mut changed = false;
        for sect in self.new.spans.ids() {
            if matches!(
                self.new.kinds[sect],
                Kind::Special | Kind::Ignored | Kind::Ksplice
            ) {
                continue;
            }
            for k in 0..self.new.spans[sect].len() {
                if self.new_match[sect][k].is_none() && self.fates[sect][k] != Fate::New {
                    self.fates[sect][k] = Fate::New;
                    changed = true;
                }
            }
        }
        changed
    }

    /// Pre spans of `kind` with no counterpart.
    pub fn deleted(&self, kind: Kind) -> Vec<SpanId> {
        let mut out = Vec::new();
        for (sect, spans) in self.old.spans.iter_ids() {
            if self.old.kinds[sect] != kind {
                continue;
            }
            for k in 0..spans.len() {
                if self.old_match[sect][k].is_none() && self.old.obj.sections[sect].size() > 0 {
                    out.push((sect, k));
                }
            }
        }
        out
    }

    /// Export entries of post with no counterpart in pre, and the reverse.
    fn match_exports(&mut self) {
        let key = |a: &Analysis, sect: SecId| a.obj.sections[sect].name.clone();
        let mut olds: HashMap<String, SpanId> = HashMap::new();
        for sect in self.old.spans.ids() {
            if self.old.kinds[sect] == Kind::Export && !self.old.spans[sect].is_empty() {
                olds.insert(key(&self.old, sect), (sect, 0));
            }
        }
        for sect in self.new.spans.ids() {
            if self.new.kinds[sect] == Kind::Export
                && !self.new.spans[sect].is_empty()
                && let Some(&o) = olds.get(&key(&self.new, sect))
            {
                self.pair(o, (sect, 0));
            }
        }
    }
}

/// Compares `old` (pre) with `new` (post).
pub fn diff(old: Analysis, new: Analysis) -> Diff {
    let mut d = Diff::new(old, new);
    d.match_globals();
    d.match_strings();
    d.match_locals();
    d.match_labels();
    d.match_tables();
    d.match_exports();
    loop {
        let mut changed = d.compare_round();
        changed |= d.nonzero_offsets();
        changed |= d.mark_new();
        if !changed {
            break;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::stem;

    #[test]
    fn stems_drop_numeric_suffixes() {
        assert_eq!(stem("foo.isra.0"), "foo.isra");
        assert_eq!(stem("foo.constprop.12"), "foo.constprop");
        assert_eq!(stem("count.3"), "count");
        assert_eq!(stem("C.1.2345"), "C");
        assert_eq!(stem("foo.cold"), "foo.cold");
        assert_eq!(stem("foo"), "foo");
        assert_eq!(stem(".5"), ".5");
    }
}
