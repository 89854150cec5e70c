//! Comparing the layouts of two builds.

use super::{Layout, Member};
use std::collections::HashMap;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::layout::Kind;

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
}
