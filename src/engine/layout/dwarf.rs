//! Reading the layouts of an object's structs and unions from its DWARF.

use super::sections::debug_sections;
use super::{Kind, Layout, LayoutError, Member};
use gimli::{AttributeValue, DwTag, EndianSlice, LittleEndian, UnitOffset, constants};
use std::collections::{BTreeMap, HashMap};

/// How deep type references are followed (names, sizes, folding): malformed
/// DWARF may make them cyclic.
const MAX_DEPTH: usize = 16;

/// How many members one layout may have (folding shared anonymous types
/// in malformed DWARF could multiply them).
const MAX_MEMBERS: usize = 10_000;

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

/// Reads every compilation unit of an ELF object's DWARF into a [`Tree`]
/// and hands it to `each`.
fn for_each_unit(data: &[u8], mut each: impl FnMut(&Tree)) -> Result<(), LayoutError> {
    let sections = debug_sections(data)?;
    let empty: &[u8] = &[];
    let dwarf = gimli::Dwarf::load(|id| -> Result<_, LayoutError> {
        let bytes = sections.get(&id).map(Vec::as_slice).unwrap_or(empty);
        Ok(EndianSlice::new(bytes, LittleEndian))
    })?;
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        each(&Tree::read(&dwarf, &unit)?);
    }
    Ok(())
}

/// The types of an ELF object's file-scope variables (C spelling, as
/// [`Tree::type_name`]: `struct ctl_table [3]`), by name, from every
/// compilation unit (the first definition wins). Declarations without a
/// type of their own are left out.
pub fn variable_types(data: &[u8]) -> Result<BTreeMap<String, String>, LayoutError> {
    let mut out = BTreeMap::new();
    for_each_unit(data, |tree| {
        for d in &tree.dies {
            if d.tag != constants::DW_TAG_variable || d.depth != 1 || d.type_ref.is_none() {
                continue;
            }
            if let Some(name) = &d.name {
                out.entry(name.clone())
                    .or_insert_with(|| tree.type_name(d.type_ref));
            }
        }
    })?;
    Ok(out)
}

/// The struct and union layouts of an ELF object's DWARF, from every
/// compilation unit, deduplicated by name (the first definition wins),
/// sorted by name.
pub fn layouts_of_object(data: &[u8]) -> Result<Vec<Layout>, LayoutError> {
    let mut all = Vec::new();
    for_each_unit(data, |tree| tree.layouts(&mut all))?;
    let mut by_name: BTreeMap<(bool, String), Layout> = BTreeMap::new();
    for l in all {
        by_name.entry((l.typedef, l.name.clone())).or_insert(l);
    }
    Ok(by_name.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_and_objects_without_dwarf_are_errors() {
        assert!(matches!(
            layouts_of_object(b"not elf"),
            Err(LayoutError::Elf(_))
        ));
        assert!(matches!(layouts_of_object(&[]), Err(LayoutError::Elf(_))));
    }
}
