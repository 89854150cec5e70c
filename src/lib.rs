//! Ksplice for modern kernels: the object engine behind `ksplice-obj`.
//!
//! Modules mirror the architecture (docs/DESIGN.md): [`cli`] (command line),
//! [`protocol`] (marker files), [`elf`] (object model), [`span`] and
//! [`classify`] (spans, labels, section kinds), [`transform`] (object
//! transforms), [`meta`] (the metadata writer) and [`metaread`] (reading
//! it back). The update tools (ksplice-apply, ksplice-undo, ksplice-view)
//! use [`tarball`] (safe unpacking) and [`update`] (the update package, the
//! kernel's sysfs interface, records). `ksplice-create` ([`create`]) checks
//! that a patch changes no struct or union layout with [`layout`] (DWARF).
//! [`interrupt`] is the termination-signal flag they all stop on.

pub mod classify;
pub mod cli;
pub mod create;
pub mod diff;
pub mod elf;
pub mod error;
pub mod fsutil;
pub mod interrupt;
pub mod layout;
pub mod log;
pub mod meta;
pub mod metaread;
pub mod protocol;
pub mod report;
pub mod span;
pub mod sysmap;
pub mod tarball;
pub mod transform;
pub mod update;
