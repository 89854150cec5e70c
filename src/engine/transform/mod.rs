//! The single-object transforms of `ksplice-obj`, each from parsed objects
//! to a new object:
//!
//! * [`keep_new_code`]: compares the pre and post builds of a file
//!   (`compare`) and keeps only what really changed, with patch records
//!   (`new_code.rs`, `patches.rs`).
//! * [`keep_old_code`]: the pre object prepared for run-pre matching
//!   (`old_code.rs`).
//! * [`keep_new_and_old_code`]: both of the above with the pre object
//!   analysed once.
//! * [`finalize`]: makes a linked update object loadable; [`rmsyms`]: the
//!   same for the symbols the core itself extracts (`finalize.rs`).
//!
//! keep-new-code and keep-old-code build their output with the `Emit`
//! builder (`emit.rs`), which looks candidate addresses up in System.map
//! (`candidates.rs`).

mod candidates;
mod emit;
mod finalize;
mod new_code;
mod old_code;
mod patches;

pub use finalize::{finalize, rmsyms};

use crate::engine::diff::{self, Diff};
use crate::engine::elf::howto;
use crate::engine::elf::{Object, Reloc, SecId};
use crate::engine::error::{ObjError, ObjResult};
use crate::engine::report::Report;
use crate::engine::span::{Analysis, Options};
use crate::engine::sysmap::SystemMap;
use new_code::new_code_of;
use old_code::old_code_of;

/// Undefined symbols whose relocations stay ELF relocations in old code:
/// the module loader resolves them (tracing call sites; old code carries no
/// `__mcount_loc`, so the loader never rewrites them).
const LOADER_SYMBOLS: &[&str] = &["mcount", "__fentry__"];

/// The code an ftrace site calls when a function is traced (or a copy of
/// its start, in a trampoline of ftrace's): old code with fentry sites
/// carries their System.map addresses for the loader's fentry rule.
pub const FTRACE_CALLERS: [&str; 2] = ["ftrace_caller", "ftrace_regs_caller"];

/// Whether the relocations of new code to undefined symbol `name` stay ELF
/// relocations, for the module loader to resolve: the tracing call sites,
/// and the exported return and retpoline thunks and `pv_ops`, whose sites
/// the module loader rewrites for the running CPU as the kernel did at
/// boot (it expects a real jump to the thunk there, never a canary, and
/// nothing may write into a paravirt site after it).
fn loader_resolves(name: &str) -> bool {
    LOADER_SYMBOLS.contains(&name)
        || name == "pv_ops"
        || name == "__x86_return_thunk"
        || name.starts_with("__x86_indirect_thunk_")
}

/// The patch-author hook sections, in the order of the core's
/// `enum ksplice_hook_kind` (kmodsrc/ksplice.h).
pub const HOOK_SECTIONS: [&str; 10] = [
    ".ksplice_call_pre_apply",
    ".ksplice_call_check_apply",
    ".ksplice_call_apply",
    ".ksplice_call_post_apply",
    ".ksplice_call_fail_apply",
    ".ksplice_call_pre_reverse",
    ".ksplice_call_check_reverse",
    ".ksplice_call_reverse",
    ".ksplice_call_post_reverse",
    ".ksplice_call_fail_reverse",
];

/// The error for a relocation type the transforms cannot rewrite.
fn unsupported_at(a: &Analysis, sect: SecId, r: &Reloc) -> ObjError {
    ObjError::Unsupported(format!(
        "relocation type {} ({}) at {}+{:#x}",
        howto::name(r.r_type),
        r.r_type,
        a.obj.sections[sect].name,
        r.offset
    ))
}

/// keep-old-code: the pre object prepared for run-pre matching.
pub fn keep_old_code(obj: Object, path: &str, map: &SystemMap) -> ObjResult<Object> {
    let a = Analysis::new(obj, path, Options { split_tables: true })?;
    old_code_of(a, &[], map)
}

/// What keep-new-code produced for one object.
#[derive(Debug)]
pub struct NewCode {
    /// The new code, or None when nothing but noise differs.
    pub object: Option<Object>,
    /// What changed and why.
    pub report: Report,
}

/// Size of the jump written over a replaced function (`jmp rel32`).
pub const TRAMPOLINE_SIZE: u64 = 5;

/// keep-new-code: compares pre and post and keeps only what really changed.
pub fn keep_new_code(
    pre: Object,
    pre_path: &str,
    post: Object,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
) -> ObjResult<NewCode> {
    new_code_of(
        compare(pre, pre_path, post, post_path)?,
        post_path,
        kid,
        map,
    )
    .map(|(nc, _)| nc)
}

/// Choices of keep-new-code the caller makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NewCodeOptions {
    /// Rewrite changed writable data of unchanged size in place (after
    /// run-pre matching verifies the running bytes) instead of refusing
    /// it; the report lists it as `rewritten_data`, for the caller's policy.
    pub rewrite_writable_data: bool,
}

/// keep-new-code, then keep-old-code of the same pre object when the new
/// code is not empty: the same results as [`keep_new_code`] followed by
/// [`keep_old_code`] of `pre` (read from `pre_path`), with the pre object
/// analysed once instead of twice. Errors of keep-old-code come second, as
/// `Ok((new_code, Some(Err(..))))`, so the caller can write what comes first.
pub fn keep_new_and_old_code(
    pre: Object,
    pre_path: &str,
    post: Object,
    post_path: &str,
    kid: &str,
    map: &SystemMap,
    opts: NewCodeOptions,
) -> ObjResult<(NewCode, Option<ObjResult<Object>>)> {
    let mut d = compare(pre, pre_path, post, post_path)?;
    if opts.rewrite_writable_data {
        d.rewrite_writable_in_place();
    }
    let (nc, d) = new_code_of(d, post_path, kid, map)?;
    // The comparison leaves the pre analysis as it was made (only the post
    // side's keep flags and shifts change), so keep-old-code can start from
    // it; the data rewritten in place is kept there for matching.
    let rewritten = d.rewritten_old();
    let old = nc
        .object
        .as_ref()
        .map(|_| old_code_of(into_pre(d), &rewritten, map));
    Ok((nc, old))
}

/// The comparison keep-new-code starts from: both objects analysed (tables
/// split into entries), then diffed.
fn compare(pre: Object, pre_path: &str, post: Object, post_path: &str) -> ObjResult<Diff> {
    let opts = Options { split_tables: true };
    let old = Analysis::new(pre, pre_path, opts)?;
    let new = Analysis::new(post, post_path, opts)?;
    Ok(diff::diff(old, new))
}

/// The pre analysis of a comparison; the rest is freed.
fn into_pre(d: Diff) -> Analysis {
    d.old
}
