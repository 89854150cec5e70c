//! The object engine: everything `ksplice-obj` and `ksplice-create` do to
//! object files, natively (no libbfd).
//!
//! Data flow: [`elf`] parses an object into the model; [`classify`] gives
//! each section a kind and, for the kernel's tables, an entry layout;
//! [`span`] cuts sections into spans with canonical symbols and labels;
//! [`diff`] matches the spans of two builds and decides each one's fate;
//! [`transform`] writes keep-new-code, keep-old-code, finalize and rmsyms
//! outputs, with [`meta`] writing the Ksplice metadata records (read back by
//! [`metaread`]) and [`report`] describing what changed. [`sysmap`] reads
//! System.map, [`layout`] compares struct layouts from DWARF, [`boot`] names the
//! boot-time (`__init`) functions a patch changes, which are not patched,
//! [`exports`] the exports (6.5+) a patch adds or removes, [`insn`]
//! decodes what relocations need of instructions, and [`error`] holds the
//! typed errors callers branch on.

pub mod boot;
pub mod classify;
pub mod diff;
pub mod elf;
pub mod error;
pub mod exports;
pub mod insn;
pub mod layout;
pub mod meta;
pub mod metaread;
pub mod report;
pub mod sites;
pub mod span;
pub mod sysmap;
pub mod tables;
pub mod transform;
