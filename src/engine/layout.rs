//! Structure layout-change detection (the `ksplice-create` check behind
//! `--allow-layout-change`).
//!
//! A patch that changes the layout of a structure or union cannot be applied
//! to a running kernel: the objects that already exist keep the old layout,
//! and replaced code would read them with the new one. `ksplice-create`
//! recompiles every changed object twice with debug information (the exact
//! Kbuild command, see [`debug_compile_command`]), once with the patch and
//! once without, reads the layouts of the structures and unions each build
//! uses from DWARF ([`layouts_of_object`]) and compares them ([`compare`]).
//!
//! The model is deliberately small: per named struct or union (or anonymous
//! one named by a typedef) defined at file scope, its size and its members
//! (name, offset, type by name, size, bit-field position). Anonymous nested
//! structs and unions are folded into their parent: an unnamed one is a
//! member with a synthetic name (`(anonymous union #1)`) whose members
//! appear under their own names (as C accesses them), a named member of an
//! anonymous type (`struct { ... } s;`) contributes `s.field` entries.
//! Types local to a function are not collected (their objects do not
//! outlive the replaced code).
//!
//! Bad input (not ELF, corrupt DWARF, relocations out of bounds) is a
//! [`LayoutError`], never a panic.

use gimli::{AttributeValue, DwTag, EndianSlice, LittleEndian, SectionId, UnitOffset, constants};
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// How deep type references are followed (names, sizes, folding): malformed
/// DWARF may make them cyclic.
const MAX_DEPTH: usize = 16;

/// How many members one layout may have (folding shared anonymous types
/// in malformed DWARF could multiply them).
const MAX_MEMBERS: usize = 10_000;

/// Struct or union.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `struct`.
    Struct,
    /// `union`.
    Union,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Struct => "struct",
            Kind::Union => "union",
        })
    }
}

/// One member of a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's name (`a`, `s.a` for a member of a named member of
    /// anonymous type, `(anonymous union #1)` for an unnamed aggregate).
    pub name: String,
    /// Byte offset from the start of the outermost type.
    pub offset: u64,
    /// The member's type, as C would spell it (`unsigned int`, `struct foo *`,
    /// `char [16]`).
    pub type_name: String,
    /// The size of the member's type in bytes.
    pub size: u64,
    /// A bit-field: (bit position from the start of the outermost type, width).
    pub bits: Option<(u64, u64)>,
}

/// The layout of one structure or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The tag (`foo` for `struct foo`), or the typedef name of an anonymous one.
    pub name: String,
    /// Struct or union.
    pub kind: Kind,
    /// True when the type is anonymous and named by a typedef.
    pub typedef: bool,
    /// `sizeof`.
    pub size: u64,
    /// Members in declaration order (folded anonymous members included).
    pub members: Vec<Member>,
}

impl Layout {
    /// `struct foo`, or `typedef struct {...} foo_t`.
    pub fn display_name(&self) -> String {
        if self.typedef {
            format!("typedef {} {{...}} {}", self.kind, self.name)
        } else {
            format!("{} {}", self.kind, self.name)
        }
    }

    fn key(&self) -> (bool, &str) {
        (self.typedef, &self.name)
    }
}

/// Why the layouts of an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// Not a readable ELF object.
    Elf(String),
    /// The object has no `.debug_info`.
    NoDebugInfo,
    /// A debug section is compressed (the build must use `-gz=none`).
    Compressed(String),
    /// A relocation of a debug section is out of bounds or has a bad symbol.
    Relocation(String),
    /// The DWARF is malformed.
    Dwarf(String),
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Elf(e) => write!(f, "not a readable ELF object: {e}"),
            LayoutError::NoDebugInfo => write!(f, "no debug information (.debug_info)"),
            LayoutError::Compressed(s) => write!(f, "{s}: compressed debug section"),
            LayoutError::Relocation(e) => write!(f, "bad debug relocation: {e}"),
            LayoutError::Dwarf(e) => write!(f, "corrupt DWARF: {e}"),
        }
    }
}

impl std::error::Error for LayoutError {}

impl From<gimli::Error> for LayoutError {
    fn from(e: gimli::Error) -> Self {
        LayoutError::Dwarf(e.to_string())
    }
}

/// x86-64 relocation types found in debug sections.
const R_X86_64_64: u32 = 1;
const R_X86_64_32: u32 = 10;

/// The DWARF sections of an ELF object, with their relocations applied
/// (in a relocatable object, `.debug_info`'s string offsets are addends).
fn debug_sections(data: &[u8]) -> Result<HashMap<SectionId, Vec<u8>>, LayoutError> {
    let file = object::File::parse(data).map_err(|e| LayoutError::Elf(e.to_string()))?;
    let mut out = HashMap::new();
    for id in [
        SectionId::DebugAbbrev,
        SectionId::DebugInfo,
        SectionId::DebugStr,
        SectionId::DebugLineStr,
        SectionId::DebugStrOffsets,
        SectionId::DebugAddr,
        SectionId::DebugLine,
        SectionId::DebugRanges,
        SectionId::DebugRngLists,
    ] {
        let Some(section) = file.section_by_name(id.name()) else {
            continue;
        };
        let mut bytes = section
            .uncompressed_data()
            .map_err(|_| LayoutError::Compressed(id.name().to_string()))?
            .into_owned();
        for (offset, rel) in section.relocations() {
            let width = match rel.flags() {
                RelocationFlags::Elf {
                    r_type: R_X86_64_64,
                } => 8,
                RelocationFlags::Elf {
                    r_type: R_X86_64_32,
                } => 4,
                _ => continue,
            };
            let base = match rel.target() {
                RelocationTarget::Symbol(i) => file
                    .symbol_by_index(i)
                    .map_err(|e| LayoutError::Relocation(format!("{}: {e}", id.name())))?
                    .address(),
                _ => 0,
            };
            let value = base.wrapping_add(rel.addend() as u64);
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let field = start
                .checked_add(width)
                .and_then(|end| bytes.get_mut(start..end))
                .ok_or_else(|| {
                    LayoutError::Relocation(format!(
                        "{}: relocation at 0x{offset:x} outside the section",
                        id.name()
                    ))
                })?;
            field.copy_from_slice(&value.to_le_bytes()[..width]);
        }
        out.insert(id, bytes);
    }
    if !out.contains_key(&SectionId::DebugInfo) {
        return Err(LayoutError::NoDebugInfo);
    }
    Ok(out)
}

/// One debugging information entry, as much as the model needs.
#[derive(Debug)]
struct Die {
    tag: DwTag,
    depth: isize,
    name: Option<String>,
    byte_size: Option<u64>,
    type_ref: Option<usize>,
    member_location: Option<u64>,
    bit_size: Option<u64>,
    bit_offset: Option<u64>,
    data_bit_offset: Option<u64>,
    upper_bound: Option<i64>,
    count: Option<u64>,
    declaration: bool,
    children: Vec<usize>,
}

/// The entries of one unit, with type references as indices.
struct Tree {
    dies: Vec<Die>,
}

impl Tree {
    fn read(
        dwarf: &gimli::Dwarf<EndianSlice<'_, LittleEndian>>,
        unit: &gimli::Unit<EndianSlice<'_, LittleEndian>>,
    ) -> Result<Tree, LayoutError> {
        let mut dies: Vec<Die> = Vec::new();
        let mut by_offset = HashMap::new();
        // (depth, index) of the open ancestors.
        let mut stack: Vec<(isize, usize)> = Vec::new();
        let mut refs: Vec<Option<usize>> = Vec::new();
        let mut cursor = unit.entries();
        while let Some(entry) = cursor.next_dfs()? {
            let depth = entry.depth();
            let mut die = Die {
                tag: entry.tag(),
                depth,
                name: None,
                byte_size: None,
                type_ref: None,
                member_location: None,
                bit_size: None,
                bit_offset: None,
                data_bit_offset: None,
                upper_bound: None,
                count: None,
                declaration: false,
                children: Vec::new(),
            };
            let mut type_off = None;
            for attr in entry.attrs() {
                let v = attr.value();
                match attr.name() {
                    constants::DW_AT_name => {
                        let s = dwarf.attr_string(unit, v)?;
                        die.name = Some(String::from_utf8_lossy(s.slice()).into_owned());
                    }
                    constants::DW_AT_byte_size => die.byte_size = v.udata_value(),
                    constants::DW_AT_type => {
                        if let AttributeValue::UnitRef(UnitOffset(o)) = v {
                            type_off = Some(o);
                        }
                    }
                    constants::DW_AT_data_member_location => {
                        die.member_location = match v {
                            AttributeValue::Exprloc(e) => plus_uconst(e, unit.encoding()),
                            v => v.udata_value(),
                        }
                    }
                    constants::DW_AT_bit_size => die.bit_size = v.udata_value(),
                    constants::DW_AT_bit_offset => die.bit_offset = v.udata_value(),
                    constants::DW_AT_data_bit_offset => die.data_bit_offset = v.udata_value(),
                    constants::DW_AT_upper_bound => {
                        die.upper_bound = v.sdata_value().or_else(|| {
                            v.udata_value()
                                .map(|u| i64::try_from(u).unwrap_or(i64::MAX))
                        })
                    }
                    constants::DW_AT_count => die.count = v.udata_value(),
                    constants::DW_AT_declaration => {
                        die.declaration = !matches!(v, AttributeValue::Flag(false))
                    }
                    _ => {}
                }
            }
            while stack.last().is_some_and(|&(d, _)| d >= depth) {
                stack.pop();
            }
            let idx = dies.len();
            if let Some(&(_, parent)) = stack.last() {
                dies[parent].children.push(idx);
            }
            by_offset.insert(entry.offset().0, idx);
            if entry.has_children() {
                stack.push((depth, idx));
            }
            dies.push(die);
            refs.push(type_off);
        }
        for (die, r) in dies.iter_mut().zip(refs) {
            die.type_ref = r.and_then(|o| by_offset.get(&o).copied());
        }
        Ok(Tree { dies })
    }

    fn die(&self, i: usize) -> &Die {
        &self.dies[i]
    }

    /// The type's name as C would spell it (typedef names kept).
    fn type_name(&self, t: Option<usize>) -> String {
        // Bounds the work on malformed DWARF (types referring to each
        // other through many parameters).
        let mut budget = 256;
        self.type_name_in(t, 0, &mut budget)
    }

    fn type_name_in(&self, t: Option<usize>, depth: usize, budget: &mut usize) -> String {
        let Some(t) = t else {
            return "void".into();
        };
        if depth > MAX_DEPTH || *budget == 0 {
            return "...".into();
        }
        *budget -= 1;
        let d = self.die(t);
        let name = || d.name.clone().unwrap_or_else(|| "<anonymous>".into());
        match d.tag {
            constants::DW_TAG_base_type | constants::DW_TAG_typedef => name(),
            constants::DW_TAG_structure_type => format!("struct {}", name()),
            constants::DW_TAG_union_type => format!("union {}", name()),
            constants::DW_TAG_enumeration_type => format!("enum {}", name()),
            constants::DW_TAG_class_type => format!("class {}", name()),
            constants::DW_TAG_pointer_type => {
                let inner = self.type_name_in(d.type_ref, depth + 1, budget);
                if inner.ends_with('*') {
                    format!("{inner}*")
                } else {
                    format!("{inner} *")
                }
            }
            constants::DW_TAG_const_type => {
                format!("const {}", self.type_name_in(d.type_ref, depth + 1, budget))
            }
            constants::DW_TAG_volatile_type => {
                format!(
                    "volatile {}",
                    self.type_name_in(d.type_ref, depth + 1, budget)
                )
            }
            constants::DW_TAG_restrict_type => {
                format!(
                    "{} restrict",
                    self.type_name_in(d.type_ref, depth + 1, budget)
                )
            }
            constants::DW_TAG_atomic_type => {
                format!(
                    "_Atomic {}",
                    self.type_name_in(d.type_ref, depth + 1, budget)
                )
            }
            constants::DW_TAG_array_type => {
                let mut s = self.type_name_in(d.type_ref, depth + 1, budget);
                s.push(' ');
                let dims = self.dims(t);
                if dims.is_empty() {
                    s.push_str("[]");
                }
                for n in dims {
                    match n {
                        Some(n) => s.push_str(&format!("[{n}]")),
                        None => s.push_str("[]"),
                    }
                }
                s
            }
            constants::DW_TAG_subroutine_type => {
                let params: Vec<String> = d
                    .children
                    .iter()
                    .filter_map(|&c| {
                        let p = self.die(c);
                        match p.tag {
                            constants::DW_TAG_formal_parameter => {
                                Some(self.type_name_in(p.type_ref, depth + 1, budget))
                            }
                            constants::DW_TAG_unspecified_parameters => Some("...".into()),
                            _ => None,
                        }
                    })
                    .collect();
                format!(
                    "{} ({})",
                    self.type_name_in(d.type_ref, depth + 1, budget),
                    params.join(", ")
                )
            }
            tag => format!("<{tag}>"),
        }
    }

    /// The element counts of an array type (None: unknown / flexible).
    fn dims(&self, t: usize) -> Vec<Option<u64>> {
        self.die(t)
            .children
            .iter()
            .map(|&c| self.die(c))
            .filter(|c| c.tag == constants::DW_TAG_subrange_type)
            .map(|c| {
                c.count.or_else(|| {
                    c.upper_bound
                        .and_then(|u| u.checked_add(1))
                        .and_then(|n| u64::try_from(n).ok())
                })
            })
            .collect()
    }

    /// `sizeof` the type (0 when unknown).
    fn type_size(&self, t: Option<usize>, depth: usize) -> u64 {
        let Some(t) = t else { return 0 };
        if depth > MAX_DEPTH {
            return 0;
        }
        let d = self.die(t);
        if let Some(s) = d.byte_size {
            return s;
        }
        match d.tag {
            constants::DW_TAG_typedef
            | constants::DW_TAG_const_type
            | constants::DW_TAG_volatile_type
            | constants::DW_TAG_restrict_type
            | constants::DW_TAG_atomic_type => self.type_size(d.type_ref, depth + 1),
            constants::DW_TAG_pointer_type => 8,
            constants::DW_TAG_array_type => {
                let elem = self.type_size(d.type_ref, depth + 1);
                self.dims(t)
                    .into_iter()
                    .fold(elem, |acc, n| acc.saturating_mul(n.unwrap_or(0)))
            }
            _ => 0,
        }
    }

    /// Strips typedefs and qualifiers: the anonymous struct or union a
    /// member's type is, if it is one.
    fn anonymous_aggregate(&self, t: Option<usize>) -> Option<(usize, Kind)> {
        let mut t = t?;
        for _ in 0..MAX_DEPTH {
            let d = self.die(t);
            match d.tag {
                constants::DW_TAG_const_type | constants::DW_TAG_volatile_type => {
                    t = d.type_ref?;
                }
                constants::DW_TAG_structure_type if d.name.is_none() => {
                    return Some((t, Kind::Struct));
                }
                constants::DW_TAG_union_type if d.name.is_none() => {
                    return Some((t, Kind::Union));
                }
                _ => return None,
            }
        }
        None
    }

    /// Appends the members of aggregate `agg` at `base` bytes to `out`.
    fn members(
        &self,
        agg: usize,
        base: u64,
        prefix: &str,
        synth: &str,
        depth: usize,
        out: &mut Vec<Member>,
    ) {
        if depth > MAX_DEPTH || out.len() >= MAX_MEMBERS {
            return;
        }
        let mut anon = 0;
        for &c in &self.die(agg).children {
            let m = self.die(c);
            if m.tag != constants::DW_TAG_member {
                continue;
            }
            if out.len() >= MAX_MEMBERS {
                return;
            }
            let loc = m.member_location.unwrap_or(0);
            let size = self.type_size(m.type_ref, 0);
            let bits = m.bit_size.map(|width| {
                let pos = match (m.data_bit_offset, m.bit_offset) {
                    (Some(p), _) => p,
                    // DWARF 2 style: bits from the most significant end of
                    // a storage unit of `byte_size` bytes at `loc`.
                    (None, Some(from_msb)) => {
                        let unit_bits = m.byte_size.unwrap_or(size).saturating_mul(8);
                        loc.saturating_mul(8)
                            .saturating_add(unit_bits)
                            .saturating_sub(from_msb)
                            .saturating_sub(width)
                    }
                    (None, None) => loc.saturating_mul(8),
                };
                (base.saturating_mul(8).saturating_add(pos), width)
            });
            let offset = match bits {
                Some((pos, _)) => pos / 8,
                None => base.saturating_add(loc),
            };
            let nested = self.anonymous_aggregate(m.type_ref);
            let (name, next_prefix, next_synth) = match (&m.name, nested) {
                (Some(n), _) => {
                    let full = format!("{prefix}{n}");
                    let p = format!("{full}.");
                    (full, p, synth.to_string())
                }
                (None, Some((_, kind))) => {
                    anon += 1;
                    let s = format!("{synth}(anonymous {kind} #{anon})");
                    let next = format!("{s}/");
                    (s, prefix.to_string(), next)
                }
                (None, None) => {
                    anon += 1;
                    (
                        format!("{synth}(anonymous #{anon})"),
                        String::new(),
                        String::new(),
                    )
                }
            };
            out.push(Member {
                name,
                offset,
                type_name: self.type_name(m.type_ref),
                size,
                bits,
            });
            if let Some((inner, _)) = nested {
                self.members(inner, offset, &next_prefix, &next_synth, depth + 1, out);
            }
        }
    }

    /// The file-scope struct and union definitions of this unit.
    fn layouts(&self, out: &mut Vec<Layout>) {
        let Some(root) = self.dies.first() else {
            return;
        };
        if root.depth != 0 {
            return;
        }
        for &c in &root.children {
            let d = self.die(c);
            let (agg, name, typedef) = match d.tag {
                constants::DW_TAG_structure_type | constants::DW_TAG_union_type => match &d.name {
                    Some(n) => (c, n.clone(), false),
                    None => continue,
                },
                constants::DW_TAG_typedef => {
                    match (&d.name, self.anonymous_aggregate(d.type_ref)) {
                        (Some(n), Some((t, _))) => (t, n.clone(), true),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let a = self.die(agg);
            if a.declaration {
                continue;
            }
            let kind = if a.tag == constants::DW_TAG_union_type {
                Kind::Union
            } else {
                Kind::Struct
            };
            let mut members = Vec::new();
            self.members(agg, 0, "", "", 0, &mut members);
            dedup_names(&mut members);
            out.push(Layout {
                name,
                kind,
                typedef,
                size: a.byte_size.unwrap_or(0),
                members,
            });
        }
    }
}

/// Makes member names unique (`x`, `x#2`): malformed or exotic input may
/// repeat one.
fn dedup_names(members: &mut [Member]) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in members.iter_mut() {
        let n = seen.entry(m.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            m.name = format!("{}#{}", m.name, n);
        }
    }
}

/// `DW_OP_plus_uconst N` (the DWARF 2 form of a member offset).
fn plus_uconst(
    e: gimli::Expression<EndianSlice<'_, LittleEndian>>,
    enc: gimli::Encoding,
) -> Option<u64> {
    let mut ops = e.operations(enc);
    match ops.next() {
        Ok(Some(gimli::Operation::PlusConstant { value })) => Some(value),
        _ => None,
    }
}

/// The struct and union layouts of an ELF object's DWARF, from every
/// compilation unit, deduplicated by name (the first definition wins),
/// sorted by name.
pub fn layouts_of_object(data: &[u8]) -> Result<Vec<Layout>, LayoutError> {
    let sections = debug_sections(data)?;
    let empty: &[u8] = &[];
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, LayoutError> {
        let bytes = sections.get(&id).map(Vec::as_slice).unwrap_or(empty);
        Ok(EndianSlice::new(bytes, LittleEndian))
    })?;
    let mut all = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let tree = Tree::read(&dwarf, &unit)?;
        tree.layouts(&mut all);
    }
    let mut by_name: BTreeMap<(bool, String), Layout> = BTreeMap::new();
    for l in all {
        by_name.entry((l.typedef, l.name.clone())).or_insert(l);
    }
    Ok(by_name.into_values().collect())
}

/// How one type's layout changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutChange {
    /// The type, as [`Layout::display_name`] of the version before.
    pub type_name: String,
    /// What changed, most significant first (`member 'bar' added at offset 8`).
    pub changes: Vec<String>,
    /// Size before and after.
    pub size: (u64, u64),
}

/// How many changes a one-line description names before "and N more".
const SHOWN: usize = 3;

impl fmt::Display for LayoutChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} changed layout: ", self.type_name)?;
        let shown: Vec<&str> = self
            .changes
            .iter()
            .take(SHOWN)
            .map(String::as_str)
            .collect();
        f.write_str(&shown.join(", "))?;
        if self.changes.len() > SHOWN {
            let more = self.changes.len() - SHOWN;
            write!(
                f,
                " and {more} more change{}",
                if more == 1 { "" } else { "s" }
            )?;
        }
        if self.size.0 != self.size.1 {
            if !self.changes.is_empty() {
                f.write_str(" ")?;
            }
            write!(f, "(size {} -> {})", self.size.0, self.size.1)?;
        }
        Ok(())
    }
}

fn bits_text(b: Option<(u64, u64)>) -> String {
    match b {
        Some((pos, width)) => format!("bits {pos}..{}", pos.saturating_add(width)),
        None => "not a bit-field".into(),
    }
}

/// The differences between two layouts of one type, most significant first:
/// kind, added, removed, retyped or resized members, bit-field changes,
/// moved members.
pub fn compare_one(before: &Layout, after: &Layout) -> Option<LayoutChange> {
    let mut changes = Vec::new();
    if before.kind != after.kind {
        changes.push(format!("changed from {} to {}", before.kind, after.kind));
    }
    let old: HashMap<&str, &Member> = before
        .members
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    let new: HashMap<&str, &Member> = after.members.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut added = Vec::new();
    let mut typed = Vec::new();
    let mut bits = Vec::new();
    let mut moved = Vec::new();
    for m in &after.members {
        match old.get(m.name.as_str()) {
            None => added.push(format!("member '{}' added at offset {}", m.name, m.offset)),
            Some(o) => {
                if o.type_name != m.type_name {
                    let sizes = if o.size != m.size {
                        format!(" (size {} -> {})", o.size, m.size)
                    } else {
                        String::new()
                    };
                    typed.push(format!(
                        "member '{}' changed type from '{}' to '{}'{sizes}",
                        m.name, o.type_name, m.type_name
                    ));
                } else if o.size != m.size {
                    typed.push(format!(
                        "member '{}' changed size from {} to {}",
                        m.name, o.size, m.size
                    ));
                }
                if o.bits != m.bits {
                    bits.push(format!(
                        "member '{}' changed from {} to {}",
                        m.name,
                        bits_text(o.bits),
                        bits_text(m.bits)
                    ));
                } else if o.offset != m.offset {
                    moved.push(format!(
                        "member '{}' moved from offset {} to {}",
                        m.name, o.offset, m.offset
                    ));
                }
            }
        }
    }
    let removed = before
        .members
        .iter()
        .filter(|m| !new.contains_key(m.name.as_str()))
        .map(|m| format!("member '{}' removed (was at offset {})", m.name, m.offset));
    changes.extend(added);
    changes.extend(removed);
    changes.extend(typed);
    changes.extend(bits);
    changes.extend(moved);
    if changes.is_empty() && before.size == after.size {
        return None;
    }
    Some(LayoutChange {
        type_name: before.display_name(),
        changes,
        size: (before.size, after.size),
    })
}

/// The types defined in both `before` and `after` whose layout differs,
/// sorted by name. Types only in one of them are not changes.
pub fn compare(before: &[Layout], after: &[Layout]) -> Vec<LayoutChange> {
    let new: HashMap<(bool, &str), &Layout> = after.iter().map(|l| (l.key(), l)).collect();
    let mut out: Vec<(String, LayoutChange)> = before
        .iter()
        .filter_map(|b| {
            let a = new.get(&b.key())?;
            compare_one(b, a).map(|c| (b.name.clone(), c))
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out.into_iter().map(|(_, c)| c).collect()
}

/// Why a Kbuild command could not be turned into a debug-info compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The `.cmd` file has no `cmd_<object> :=` line.
    NoCommand(String),
    /// The command could not be split into words.
    Quoting(String),
    /// The command has no `-o <object>`.
    NoOutput(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NoCommand(o) => write!(f, "no 'cmd_{o} :=' line"),
            CommandError::Quoting(e) => write!(f, "cannot split the command: {e}"),
            CommandError::NoOutput(o) => write!(f, "the command has no '-o {o}'"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Options of a Kbuild command the debug compile leaves out: dependency
/// output, and whatever would take the DWARF away or elsewhere.
fn dropped(w: &str) -> bool {
    w.starts_with("-Wp,-MMD,")
        || w.starts_with("-Wp,-MD,")
        || w == "-g0"
        || w == "-gsplit-dwarf"
        || w.starts_with("-gz")
        || w.starts_with("-femit-struct-debug")
}

/// The compile command Kbuild used for `object` (relative to the objtree),
/// from the text of its `.<name>.o.cmd` file, rewritten to write `out` with
/// DWARF 4 debug information and nothing else: a leading `ksplice-cc` and
/// `-Wp,-MMD,<file>` are dropped, as are `-g0`, split DWARF, compressed
/// debug sections and reduced struct debug information; `-o <object>`
/// becomes `-o <out>`; anything after the compiler command (`; objtool
/// ...`) is dropped. Make's escapes (`$$`, `$(pound)`) are undone.
pub fn debug_compile_command(
    cmd_file: &str,
    object: &str,
    out: &str,
) -> Result<Vec<String>, CommandError> {
    let key = format!("cmd_{object} :=");
    let line = cmd_file
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .ok_or_else(|| CommandError::NoCommand(object.to_string()))?;
    let line = line.replace("$(pound)", "#").replace("$$", "$");
    let words = crate::util::fsutil::shell_words(&line)
        .map_err(|e| CommandError::Quoting(format!("{e:#}")))?;
    let mut cmd: Vec<String> = Vec::new();
    let mut it = words.into_iter().peekable();
    if it
        .peek()
        .is_some_and(|w| w == "ksplice-cc" || w.ends_with("/ksplice-cc"))
    {
        it.next();
    }
    let mut saw_output = false;
    while let Some(w) = it.next() {
        if matches!(w.as_str(), ";" | "&&" | "||" | "|") {
            break;
        }
        let (w, last) = match w.strip_suffix(';') {
            Some(s) => (s.to_string(), true),
            None => (w, false),
        };
        if w == "-o" {
            match it.next() {
                Some(o) => {
                    let o = o.strip_suffix(';').unwrap_or(&o).to_string();
                    if o == object || o.trim_start_matches("./") == object {
                        saw_output = true;
                        cmd.push("-o".into());
                        cmd.push(out.to_string());
                    } else {
                        return Err(CommandError::NoOutput(object.to_string()));
                    }
                }
                None => return Err(CommandError::NoOutput(object.to_string())),
            }
        } else if !w.is_empty() && !dropped(&w) {
            cmd.push(w);
        }
        if last {
            break;
        }
    }
    if !saw_output {
        return Err(CommandError::NoOutput(object.to_string()));
    }
    cmd.extend(["-g", "-gdwarf-4", "-gz=none"].map(String::from));
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, offset: u64, ty: &str, size: u64) -> Member {
        Member {
            name: name.into(),
            offset,
            type_name: ty.into(),
            size,
            bits: None,
        }
    }

    fn layout(name: &str, size: u64, members: Vec<Member>) -> Layout {
        Layout {
            name: name.into(),
            kind: Kind::Struct,
            typedef: false,
            size,
            members,
        }
    }

    #[test]
    fn identical_layouts_are_no_change() {
        let a = layout(
            "foo",
            8,
            vec![member("a", 0, "int", 4), member("b", 4, "int", 4)],
        );
        assert!(compare(std::slice::from_ref(&a), std::slice::from_ref(&a)).is_empty());
    }

    #[test]
    fn added_member_is_named_with_its_offset_and_the_size() {
        let b = layout(
            "foo",
            16,
            vec![member("a", 0, "long", 8), member("c", 8, "long", 8)],
        );
        let a = layout(
            "foo",
            24,
            vec![
                member("a", 0, "long", 8),
                member("bar", 8, "long", 8),
                member("c", 16, "long", 8),
            ],
        );
        let c = compare(&[b], &[a]);
        assert_eq!(c.len(), 1);
        assert_eq!(
            c[0].to_string(),
            "struct foo changed layout: member 'bar' added at offset 8, member 'c' moved from offset 8 to 16 (size 16 -> 24)"
        );
    }

    #[test]
    fn removed_retyped_resized_and_moved_members() {
        let b = layout(
            "foo",
            32,
            vec![
                member("a", 0, "int", 4),
                member("b", 8, "char [8]", 8),
                member("c", 16, "long", 8),
                member("d", 24, "long", 8),
            ],
        );
        let a = layout(
            "foo",
            32,
            vec![
                member("a", 0, "long", 8),
                member("b", 8, "char [16]", 16),
                member("c", 24, "long", 8),
            ],
        );
        let c = &compare(&[b], &[a])[0];
        assert_eq!(
            c.changes,
            vec![
                "member 'd' removed (was at offset 24)",
                "member 'a' changed type from 'int' to 'long' (size 4 -> 8)",
                "member 'b' changed type from 'char [8]' to 'char [16]' (size 8 -> 16)",
                "member 'c' moved from offset 16 to 24",
            ]
        );
        assert!(c.to_string().ends_with("and 1 more change"), "{c}");
    }

    #[test]
    fn size_only_change_and_kind_change() {
        let b = layout("foo", 8, vec![member("a", 0, "int", 4)]);
        let mut a = b.clone();
        a.size = 16;
        assert_eq!(
            compare(std::slice::from_ref(&b), &[a])[0].to_string(),
            "struct foo changed layout: (size 8 -> 16)"
        );
        let mut u = b.clone();
        u.kind = Kind::Union;
        assert_eq!(
            compare(&[b], &[u])[0].to_string(),
            "struct foo changed layout: changed from struct to union"
        );
    }

    #[test]
    fn bitfield_changes_are_reported() {
        let mut m = member("f", 4, "unsigned int", 4);
        m.bits = Some((32, 3));
        let b = layout("foo", 8, vec![m.clone()]);
        m.bits = Some((32, 4));
        let a = layout("foo", 8, vec![m]);
        assert_eq!(
            compare(&[b], &[a])[0].changes,
            vec!["member 'f' changed from bits 32..35 to bits 32..36"]
        );
    }

    #[test]
    fn new_and_removed_types_are_fine_and_typedefs_are_their_own_namespace() {
        let b = layout("old", 8, vec![member("a", 0, "int", 4)]);
        let a = layout("new", 16, vec![member("a", 0, "long", 8)]);
        assert!(compare(std::slice::from_ref(&b), &[a]).is_empty());
        let mut t = b.clone();
        t.typedef = true;
        t.size = 99;
        assert!(compare(&[b], &[t.clone()]).is_empty());
        assert_eq!(t.display_name(), "typedef struct {...} old");
    }

    #[test]
    fn kbuild_command_becomes_a_debug_compile() {
        let cmd = "savedcmd_x := y\ncmd_fs/proc/meminfo.o := ksplice-cc gcc -Wp,-MMD,fs/proc/.meminfo.o.d -nostdinc -g0 -gz=zlib -DKBUILD_MODFILE='\"fs/proc/proc\"' -DX='$$a' -DY=$(pound)1 -c -o fs/proc/meminfo.o /src/fs/proc/meminfo.c   ; ./tools/objtool/objtool --hacks=jump_label fs/proc/meminfo.o\n\nsource_fs/proc/meminfo.o := /src/fs/proc/meminfo.c\n";
        let c = debug_compile_command(cmd, "fs/proc/meminfo.o", "/tmp/x/after.o").unwrap();
        assert_eq!(
            c,
            vec![
                "gcc",
                "-nostdinc",
                "-DKBUILD_MODFILE=\"fs/proc/proc\"",
                "-DX=$a",
                "-DY=#1",
                "-c",
                "-o",
                "/tmp/x/after.o",
                "/src/fs/proc/meminfo.c",
                "-g",
                "-gdwarf-4",
                "-gz=none",
            ]
        );
        assert_eq!(
            debug_compile_command(cmd, "fs/proc/other.o", "o"),
            Err(CommandError::NoCommand("fs/proc/other.o".into()))
        );
        assert_eq!(
            debug_compile_command("cmd_a.o := gcc -c a.c", "a.o", "o"),
            Err(CommandError::NoOutput("a.o".into()))
        );
        assert!(matches!(
            debug_compile_command("cmd_a.o := gcc '-c a.c -o a.o", "a.o", "o"),
            Err(CommandError::Quoting(_))
        ));
    }

    #[test]
    fn non_elf_and_objects_without_dwarf_are_errors() {
        assert!(matches!(
            layouts_of_object(b"not elf"),
            Err(LayoutError::Elf(_))
        ));
        assert!(matches!(layouts_of_object(&[]), Err(LayoutError::Elf(_))));
    }
}
