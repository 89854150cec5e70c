//! Spans and labels: the units Ksplice matches, keeps and patches.
//!
//! A span is a function or data item (one section when the object was built
//! with `-ffunction-sections -fdata-sections`), one string of a merged string
//! section, or one entry of a table section. Every span has a label that is
//! stable across builds of the same source file and unique in the object;
//! labels are how the kernel side ties old code, new code and the running
//! kernel together.

use crate::engine::classify::{self, Kind};
use crate::engine::elf::howto;
use crate::engine::elf::{IdVec, Object, Reloc, SecId, SymId, SymSection};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::tables;
use std::hash::{BuildHasherDefault, Hasher};

/// The hash maps of the engine's analyses and writers: keyed by symbol and
/// section indices, offsets and names of the objects at hand, looked up a
/// few times per ELF entry. An add-multiply hash (rustc-hash's, with its
/// final rotation so that the low bits hashbrown indexes by depend on the
/// high bits of the product) instead of SipHash, whose resistance to chosen
/// collisions these keys do not need; deterministic, unlike SipHash's
/// random keys, which changes no output: nothing iterates these maps.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FastHasher>>;
/// A set with the hash of [`HashMap`].
pub(crate) type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<FastHasher>>;

/// See [`HashMap`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl FastHasher {
    fn add(&mut self, w: u64) {
        self.0 = self.0.wrapping_add(w).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// One span of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The section the span is part of.
    pub sect: SecId,
    /// Offset of the span in its section.
    pub start: u64,
    /// Size including alignment padding.
    pub size: u64,
    /// Size of the meaningful contents (a string without its padding, a
    /// table entry without its tail padding).
    pub contents_size: u64,
    /// Unique, build-stable name.
    pub label: String,
    /// The canonical symbol at the span's start, if any.
    pub symbol: Option<SymId>,
    /// Whether the span goes to the output.
    pub keep: bool,
    /// Output offset minus input offset once unkept spans are removed.
    pub shift: i64,
}

/// A span of an analysis: its section and its position among the
/// section's spans.
pub type SpanId = (SecId, usize);

/// Options for building spans.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Split table sections into one span per entry.
    pub split_tables: bool,
}

/// An object with its section kinds, spans and labels.
///
/// The per-section tables (`kinds`, `spans`) are indexed by the [`SecId`]
/// of the section in `obj`, as are the `sect` parameters of the methods;
/// a span is named by a [`SpanId`] and a symbol by a [`SymId`].
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The object.
    pub obj: Object,
    /// The file name used inside local labels (the object path without
    /// any `.KSPLICE*` suffix).
    pub file: String,
    /// Kind of each section.
    pub kinds: IdVec<SecId, Kind>,
    /// Spans of each section, sorted by start.
    pub spans: IdVec<SecId, Vec<Span>>,
    /// Canonical symbol at (section, offset).
    csym: HashMap<(SecId, u64), SymId>,
    /// Label of each canonical symbol.
    labels: HashMap<SymId, String>,
    /// Symbols defined in each section, in symbol table order.
    by_section: IdVec<SecId, Vec<SymId>>,
    /// The one section referring to each place (for static locals).
    callers: HashMap<(SecId, u64), String>,
}

/// The name used for `path` inside labels: `.KSPLICE*` suffixes removed.
pub fn label_file(path: &str) -> String {
    match path.find(".KSPLICE") {
        Some(i) => path[..i].to_string(),
        None => path.to_string(),
    }
}

/// A static local variable name as GCC emits it (`name.123`), and its base.
fn static_local_base(name: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (base, num) = name.rsplit_once('.')?;
    if !digits(num) || base.is_empty() {
        return None;
    }
    // `C.123.4567` style: strip a second numeric component.
    match base.rsplit_once('.') {
        Some((b, n)) if digits(n) && !b.is_empty() => Some(b),
        _ => Some(base),
    }
}

/// How good a symbol is as the name of a place: globals first, then named
/// locals, then section symbols, then assembler-local `.L` labels (whose
/// numbering changes with every edit and which System.map never lists).
fn rank(s: &crate::engine::elf::Symbol) -> u8 {
    if s.is_global() {
        3
    } else if s.is_section() {
        1
    } else if s.name.starts_with(".L") || s.name.is_empty() {
        0
    } else {
        2
    }
}

/// True for symbols with a name worth looking up in System.map.
pub fn is_named(s: &crate::engine::elf::Symbol) -> bool {
    rank(s) >= 2
}

impl Analysis {
    /// Builds spans and labels for `obj`, read from `path`.
    pub fn new(obj: Object, path: &str, opts: Options) -> ObjResult<Analysis> {
        let kinds: IdVec<SecId, Kind> = obj.sections.iter().map(classify::kind).collect();
        let mut a = Analysis {
            file: label_file(path),
            kinds,
            spans: IdVec::filled(obj.sections.len(), Vec::new()),
            csym: HashMap::default(),
            labels: HashMap::default(),
            by_section: IdVec::filled(obj.sections.len(), Vec::new()),
            callers: HashMap::default(),
            obj,
        };
        for (i, s) in a.obj.symbols_with_ids() {
            if let SymSection::Section(k) = s.section
                && let Some(v) = a.by_section.get_mut(k)
            {
                v.push(i);
            }
        }
        a.init_csyms();
        a.init_labels();
        a.init_spans(opts)?;
        Ok(a)
    }

    fn init_csyms(&mut self) {
        for (i, s) in self.obj.symbols_with_ids() {
            let SymSection::Section(sect) = s.section else {
                continue;
            };
            if s.is_file() {
                continue;
            }
            let key = (sect, s.value);
            match self.csym.get(&key) {
                None => {
                    self.csym.insert(key, i);
                }
                Some(&c) => {
                    if rank(s) > rank(&self.obj[c]) {
                        self.csym.insert(key, i);
                    }
                }
            }
        }
    }

    /// The symbols defined in section `sect`.
    pub fn symbols_in(&self, sect: SecId) -> &[SymId] {
        self.by_section.get(sect).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The canonical symbol for `sym`: itself for undefined and absolute
    /// symbols, otherwise the preferred symbol at the same place.
    pub fn canonical(&self, sym: SymId) -> Option<SymId> {
        let s = self.obj.get_symbol(sym)?;
        match s.section {
            SymSection::Section(sect) => self.csym.get(&(sect, s.value)).copied(),
            _ => Some(sym),
        }
    }

    /// The canonical symbol at `offset` of section `sect`.
    pub fn symbol_at(&self, sect: SecId, offset: u64) -> Option<SymId> {
        self.csym.get(&(sect, offset)).copied()
    }

    /// Which section refers to `(sect, offset)`: for labelling static locals.
    fn callers(&self) -> HashMap<(SecId, u64), String> {
        let mut callers: HashMap<(SecId, u64), String> = HashMap::default();
        for (src, sec) in self.obj.sections_with_ids() {
            for r in &sec.relocs {
                let Some(s) = self.obj.get_symbol(r.sym) else {
                    continue;
                };
                let Some(t) = s.section.id() else {
                    continue;
                };
                let off = s.value.wrapping_add(self.target_offset(src, r) as u64);
                let name = &self.obj.sections[src].name;
                callers
                    .entry((t, off))
                    .and_modify(|c| {
                        if c != name {
                            *c = "*multiple_callers*".to_string();
                        }
                    })
                    .or_insert_with(|| name.clone());
            }
        }
        callers
    }

    fn raw_label(&self, sym: SymId, callers: &HashMap<(SecId, u64), String>) -> String {
        let s = &self.obj[sym];
        if s.is_undefined() || s.is_global() {
            return s.name.clone();
        }
        match s.section {
            SymSection::Section(sect) => {
                let secname = &self.obj[sect].name;
                match self.canonical(sym) {
                    None => format!("{secname}+{:x}<{}>", s.value, self.file),
                    Some(c) => {
                        let g = &self.obj[c];
                        if g.is_global() {
                            g.name.clone()
                        } else if !is_named(g) {
                            if s.value == 0 {
                                format!("{secname}<{}>", self.file)
                            } else {
                                format!("{secname}+{:x}<{}>", s.value, self.file)
                            }
                        } else if let (Some(base), true) = (
                            static_local_base(&g.name),
                            g.kind == object::elf::STT_OBJECT,
                        ) {
                            let caller = callers
                                .get(&(sect, g.value))
                                .map(String::as_str)
                                .unwrap_or("*no_caller*");
                            format!("{base}<{caller}>+{:x}<{}>", s.value, self.file)
                        } else {
                            format!("{}<{}>", g.name, self.file)
                        }
                    }
                }
            }
            _ => format!("{}<{}>", s.name, self.file),
        }
    }

    /// The section that refers to `(sect, offset)`, `*multiple_callers*`
    /// or `*no_caller*`: what tells static locals of the same name apart.
    pub fn caller(&self, sect: SecId, offset: u64) -> &str {
        self.callers
            .get(&(sect, offset))
            .map(String::as_str)
            .unwrap_or("*no_caller*")
    }

    fn init_labels(&mut self) {
        self.callers = self.callers();
        let callers = std::mem::take(&mut self.callers);
        let mut order: Vec<SymId> = Vec::new();
        for (i, s) in self.obj.symbols_with_ids() {
            if s.is_file() {
                continue;
            }
            if self.canonical(i) == Some(i) {
                order.push(i);
            }
        }
        let mut first: HashMap<String, (usize, usize)> = HashMap::default();
        let mut labels: Vec<(SymId, String)> = Vec::with_capacity(order.len());
        for &i in &order {
            let l = self.raw_label(i, &callers);
            labels.push((i, l));
        }
        // Undefined and global names are unique by construction; local
        // labels that collide get ~N suffixes in symbol table order.
        let mut counts: HashMap<String, usize> = HashMap::default();
        for (_, l) in &labels {
            *counts.entry(l.clone()).or_default() += 1;
        }
        for (pos, (_, l)) in labels.iter_mut().enumerate() {
            if counts.get(l.as_str()).copied().unwrap_or(0) > 1 {
                let e = first.entry(l.clone()).or_insert((pos, 0));
                let n = e.1;
                e.1 += 1;
                *l = format!("{l}~{n}");
            }
        }
        self.labels = labels.into_iter().collect();
        self.callers = callers;
    }

    /// The label of a symbol (through its canonical symbol).
    pub fn label(&self, sym: SymId) -> String {
        if let Some(c) = self.canonical(sym)
            && let Some(l) = self.labels.get(&c)
        {
            return l.clone();
        }
        let s = &self.obj[sym];
        match s.section {
            SymSection::Section(sect) => {
                format!("{}+{:x}<{}>", self.obj[sect].name, s.value, self.file)
            }
            _ => s.name.clone(),
        }
    }

    /// The label of a section as a whole (its symbol at offset 0).
    pub fn section_label(&self, sect: SecId) -> String {
        match self.symbol_at(sect, 0) {
            Some(c) => self.label(c),
            None => format!("{}<{}>", self.obj.sections[sect].name, self.file),
        }
    }

    fn push_span(&mut self, sect: SecId, start: u64, size: u64, contents_size: u64) {
        let symbol = self.symbol_at(sect, start);
        let label = match symbol {
            Some(s) => self.label(s),
            None => {
                let l = self.section_label(sect);
                if start == 0 {
                    l
                } else {
                    format!("{l}<span:{start:x}>")
                }
            }
        };
        self.spans[sect].push(Span {
            sect,
            start,
            size,
            contents_size,
            label,
            symbol,
            keep: true,
            shift: 0,
        });
    }

    fn init_spans(&mut self, opts: Options) -> ObjResult<()> {
        for sect in self.obj.section_ids() {
            let kind = self.kinds[sect];
            let size = self.obj.sections[sect].size();
            let table = tables::table(&self.obj.sections[sect].name);
            if kind == Kind::String && self.obj.sections[sect].sh_type != object::elf::SHT_NOBITS {
                self.string_spans(sect);
            } else if kind == Kind::KspliceCall {
                let fields: Vec<(u64, u64)> = self.obj.sections[sect]
                    .relocs
                    .iter()
                    .map(|r| {
                        (
                            r.offset,
                            u64::from(howto::field_size(r.r_type).unwrap_or(8)),
                        )
                    })
                    .collect();
                for (off, len) in fields {
                    self.push_span(sect, off, len, len);
                }
                if self.spans[sect].is_empty() {
                    self.push_span(sect, 0, size, size);
                }
            } else if let (Some(t), true) = (table, opts.split_tables) {
                if !t.fits(size) {
                    return Err(ObjError::Corrupt(format!(
                        "table section {} has size {size:#x}, not a multiple of its entry size {}",
                        self.obj.sections[sect].name, t.entry_size
                    )));
                }
                let mut off = 0;
                while off < size {
                    let len = t.entry_size.min(size - off);
                    self.push_span(sect, off, len, len);
                    off += t.entry_size;
                }
                if size == 0 {
                    self.push_span(sect, 0, 0, 0);
                }
            } else {
                self.push_span(sect, 0, size, size);
                if kind == Kind::Text {
                    self.split_functions(sect);
                }
            }
        }
        if opts.split_tables {
            self.split_table_others()?;
            self.label_table_entries();
            self.split_out_of_line_stubs();
        }
        Ok(())
    }

    /// A text section holding several functions (`.sched.text`,
    /// `.spinlock.text`, `.noinstr.text` and the like, which a section
    /// attribute keeps out of `-ffunction-sections`, or the `.text` of an
    /// assembly file) gets one span per function, as if each had its own
    /// section.
    fn split_functions(&mut self, sect: SecId) {
        let size = self.obj.sections[sect].size();
        let cuts: Vec<u64> = self
            .symbols_in(sect)
            .iter()
            .map(|&i| &self.obj[i])
            .filter(|s| s.kind == object::elf::STT_FUNC && s.value > 0 && s.value < size)
            .map(|s| s.value)
            .collect();
        if !cuts.is_empty() {
            self.split_at(sect, cuts);
        }
    }

    /// Replaces the spans of `sect` by spans cut at `cuts` (offsets inside
    /// the section; the start and the end are implied).
    fn split_at(&mut self, sect: SecId, mut cuts: Vec<u64>) {
        let size = self.obj.sections[sect].size();
        cuts.retain(|&c| c < size);
        cuts.extend([0, size]);
        cuts.sort_unstable();
        cuts.dedup();
        self.spans[sect].clear();
        for w in cuts.windows(2) {
            self.push_span(sect, w[0], w[1] - w[0], w[1] - w[0]);
        }
        if self.spans[sect].is_empty() {
            self.push_span(sect, 0, 0, 0);
        }
    }

    /// `.altinstr_aux` holds the out-of-line stubs of `static_cpu_has()`
    /// for every function of the object, each entered from one function and
    /// jumping back into it. It is split at every place another section
    /// jumps to, and each stub is named after the function that enters it
    /// (`.altinstr_aux<from:foo#0>`), so that one changed function changes
    /// only its own stubs.
    fn split_out_of_line_stubs(&mut self) {
        let Some(aux) = self.obj.section_by_name(".altinstr_aux") else {
            return;
        };
        let size = self.obj.sections[aux].size();
        let mut entries: Vec<(u64, SecId, u64)> = Vec::new();
        for src in self.obj.section_ids() {
            if src == aux || self.kinds[src] != Kind::Text {
                continue;
            }
            for r in &self.obj.sections[src].relocs {
                if let Some((t, off)) = self.reloc_target(src, r)
                    && t == aux
                    && off < size
                {
                    entries.push((off, src, r.offset));
                }
            }
        }
        self.split_at(aux, entries.iter().map(|e| e.0).collect());
        // Name each stub after its first referrer, in referrer order.
        let mut seen: HashMap<String, usize> = HashMap::default();
        let mut named = vec![false; self.spans[aux].len()];
        for (off, src, at) in entries {
            let Some(k) = self.find_span(aux, off) else {
                continue;
            };
            if named[k] || self.spans[aux][k].start != off {
                continue;
            }
            let referrer = match self.find_span(src, at) {
                Some(j) => self.spans[src][j].label.clone(),
                None => self.obj.sections[src].name.clone(),
            };
            let n = seen.entry(referrer.clone()).or_insert(0);
            self.spans[aux][k].label = format!(".altinstr_aux<from:{referrer}#{n}>");
            *n += 1;
            named[k] = true;
        }
    }

    fn string_spans(&mut self, sect: SecId) {
        let data = self.obj.sections[sect].data.clone();
        let align = self.obj.sections[sect].align.max(1) as usize;
        let mut start = 0usize;
        if data.is_empty() {
            self.push_span(sect, 0, 0, 0);
            return;
        }
        while start < data.len() {
            let len = data[start..]
                .iter()
                .position(|&b| b == 0)
                .map(|p| p + 1)
                .unwrap_or(data.len() - start);
            let contents = len;
            let mut size = len;
            // Pad up to the alignment with NULs (some string sections align
            // only some strings).
            while !(start + size).is_multiple_of(align)
                && start + size < data.len()
                && data[start + size] == 0
            {
                size += 1;
            }
            self.push_span(sect, start as u64, size as u64, contents as u64);
            start += size;
        }
    }

    /// Splits a table's dedicated "other" section (for example
    /// `.altinstr_replacement`) at the offsets the table's entries point to.
    fn split_table_others(&mut self) -> ObjResult<()> {
        for t in tables::tables() {
            let (Some(other_name), Some(other_off)) = (t.other_sect, t.other_offset) else {
                continue;
            };
            let Some(tsect) = self.obj.section_by_name(t.name) else {
                continue;
            };
            let Some(osect) = self.obj.section_by_name(other_name) else {
                continue;
            };
            let osize = self.obj.sections[osect].size();
            let mut cuts = Vec::new();
            for r in &self.obj.sections[tsect].relocs {
                if r.offset % t.entry_size != other_off {
                    continue;
                }
                if let Some((s, off)) = self.reloc_target(tsect, r)
                    && s == osect
                    && off < osize
                {
                    cuts.push(off);
                }
            }
            self.split_at(osect, cuts);
        }
        Ok(())
    }

    /// Table entries without a symbol of their own are named after what
    /// they refer to, so the names survive renumbering.
    fn label_table_entries(&mut self) {
        let mut renames: Vec<(SpanId, String)> = Vec::new();
        for (sect, spans) in self.spans.iter_ids() {
            let name = &self.obj.sections[sect].name;
            let Some(t) = tables::table(name) else {
                continue;
            };
            let Some(addr) = t.addr_offset else { continue };
            for (k, span) in spans.iter().enumerate() {
                if span.symbol.is_some_and(|s| !self.obj[s].is_section()) {
                    continue;
                }
                let Some(r) = self.reloc_at(sect, span.start + addr) else {
                    continue;
                };
                let Some((ts, toff)) = self.reloc_target(sect, r) else {
                    let n = self.obj[r.sym].name.clone();
                    renames.push(((sect, k), format!("{name}<target:{n}>")));
                    continue;
                };
                let Some(tspan) = self.find_span(ts, toff) else {
                    continue;
                };
                let (place, off) = self.place_in_span((ts, tspan), toff);
                renames.push(((sect, k), format!("{name}<target:{place}+{off:x}>")));
            }
        }
        for (id, label) in renames {
            self.span_mut(id).label = label;
        }
        // Labels of entries must stay unique.
        let mut seen: HashMap<String, usize> = HashMap::default();
        for spans in &mut self.spans {
            for s in spans.iter_mut() {
                let n = seen.entry(s.label.clone()).or_insert(0);
                if *n > 0 {
                    s.label = format!("{}~{}", s.label, *n);
                }
                *n += 1;
            }
        }
    }

    /// The name of `offset` of a span, for a table entry that points
    /// there: the span's label and the distance from its start, or, in a
    /// span of several functions (an unsplit section such as `.init.text`),
    /// the function that holds the place and the distance from it.
    fn place_in_span(&self, (sect, k): SpanId, offset: u64) -> (String, u64) {
        let span = &self.spans[sect][k];
        let func = self
            .symbols_in(sect)
            .iter()
            .map(|&i| (i, &self.obj[i]))
            .filter(|(_, s)| s.kind == object::elf::STT_FUNC && is_named(s))
            .filter(|(_, s)| s.value > span.start && s.value <= offset)
            .max_by_key(|(_, s)| s.value);
        match func {
            Some((i, s)) => (self.label(i), offset - s.value),
            None => (span.label.clone(), offset.wrapping_sub(span.start)),
        }
    }

    /// The relocation whose field starts exactly at `offset` of `sect`.
    pub fn reloc_at(&self, sect: SecId, offset: u64) -> Option<&Reloc> {
        let relocs = &self.obj.get_section(sect)?.relocs;
        let i = relocs.partition_point(|r| r.offset < offset);
        relocs.get(i).filter(|r| r.offset == offset)
    }

    /// Relocations whose field starts inside `[start, start + size)`.
    pub fn relocs_in(&self, sect: SecId, start: u64, size: u64) -> &[Reloc] {
        let relocs = &self.obj.sections[sect].relocs;
        let a = relocs.partition_point(|r| r.offset < start);
        let b = relocs.partition_point(|r| r.offset < start.saturating_add(size));
        &relocs[a..b]
    }

    /// True when byte `offset` of `sect` lies inside a relocated field.
    pub fn part_of_reloc(&self, sect: SecId, offset: u64) -> bool {
        let relocs = &self.obj.sections[sect].relocs;
        let i = relocs.partition_point(|r| r.offset <= offset);
        if i == 0 {
            return false;
        }
        let r = &relocs[i - 1];
        let len = u64::from(howto::field_size(r.r_type).unwrap_or(1));
        offset < r.offset + len
    }

    /// The offset relative to the symbol that a relocation refers to: the
    /// addend, corrected for the x86 convention that a PC-relative operand in
    /// code is relative to the end of the instruction (the field, and the
    /// immediate after it, [`super::insn::rip_imm_size`]). Data tables on 6.1
    /// use field-relative (`sym - .`) pointers, so their addend is the offset.
    pub fn target_offset(&self, sect: SecId, r: &Reloc) -> i64 {
        match howto::howto(r.r_type) {
            Ok(h) if h.pcrel && self.obj.sections[sect].is_exec() => {
                let imm = super::insn::rip_imm_size(&self.obj.sections[sect].data, r.offset);
                r.addend.wrapping_add(i64::from(h.size)).wrapping_add(imm)
            }
            _ => r.addend,
        }
    }

    /// The section and offset a relocation points to (None for undefined,
    /// absolute and common symbols).
    pub fn reloc_target(&self, sect: SecId, r: &Reloc) -> Option<(SecId, u64)> {
        let s = self.obj.get_symbol(r.sym)?;
        let SymSection::Section(t) = s.section else {
            return None;
        };
        let mut off = s.value;
        if s.is_section() {
            off = off.wrapping_add(self.target_offset(sect, r) as u64);
        }
        Some((t, off))
    }

    /// The span a relocation points to. Out-of-range targets of a section
    /// symbol (negative offsets of odd instructions) fall back on the first span.
    pub fn reloc_target_span(&self, sect: SecId, r: &Reloc) -> Option<SpanId> {
        let (t, off) = self.reloc_target(sect, r)?;
        match self.find_span(t, off) {
            Some(k) => Some((t, k)),
            None if !self.spans[t].is_empty() => Some((t, 0)),
            None => None,
        }
    }

    /// Index of the span of `sect` containing `offset`.
    pub fn find_span(&self, sect: SecId, offset: u64) -> Option<usize> {
        let spans = self.spans.get(sect)?;
        let i = spans.partition_point(|s| s.start <= offset);
        if i > 0 {
            let s = &spans[i - 1];
            if offset < s.start.saturating_add(s.size) {
                return Some(i - 1);
            }
        }
        let size = self.obj.sections[sect].size();
        if !spans.is_empty() && (size == 0 || (offset == size && spans.len() == 1)) {
            return Some(if offset == size { spans.len() - 1 } else { 0 });
        }
        None
    }

    /// Computes each kept span's shift once unkept spans are removed.
    pub fn compute_shifts(&mut self) {
        for spans in &mut self.spans {
            let mut out = 0u64;
            for s in spans.iter_mut() {
                if s.keep {
                    s.shift = out as i64 - s.start as i64;
                    out += s.size;
                }
            }
        }
    }

    /// The span `id`.
    pub fn span(&self, id: SpanId) -> &Span {
        &self.spans[id.0][id.1]
    }

    /// The span `id`, to change.
    pub fn span_mut(&mut self, id: SpanId) -> &mut Span {
        &mut self.spans[id.0][id.1]
    }

    /// True when any span of `sect` is kept.
    pub fn section_kept(&self, sect: SecId) -> bool {
        self.spans[sect].iter().any(|s| s.keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_local_names() {
        assert_eq!(static_local_base("count.3"), Some("count"));
        assert_eq!(static_local_base("C.12.3456"), Some("C"));
        assert_eq!(static_local_base("foo"), None);
        assert_eq!(static_local_base("foo.isra.0"), Some("foo.isra"));
        assert_eq!(static_local_base(".5"), None);
    }

    #[test]
    fn label_file_strips_suffixes() {
        assert_eq!(label_file("kernel/sys.o.KSPLICE_pre"), "kernel/sys.o");
        assert_eq!(label_file("kernel/sys.o"), "kernel/sys.o");
    }
}
