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

mod command;
mod compare;
mod dwarf;
mod model;
mod sections;

pub use command::{CommandError, debug_compile_command};
pub use compare::{LayoutChange, compare, compare_one};
pub use dwarf::{layouts_of_object, variable_types};
pub use model::{Kind, Layout, LayoutError, Member};
