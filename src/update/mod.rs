//! An update package and the running kernel, as ksplice-apply, ksplice-undo
//! and ksplice-view see them; by concern:
//!
//! - [`env`](mod@env): where the kernel is (`/sys`, `/proc`) and how modules are
//!   loaded (`insmod`, `rmmod`), each overridable from the environment so
//!   tests can fake the kernel: `KSPLICE_SYSFS`, `KSPLICE_PROC`,
//!   `KSPLICE_INSMOD`, `KSPLICE_RMMOD`, and `KSPLICE_STATE` for the records.
//! - [`kernel`]: the update's directory `/sys/kernel/ksplice/<kid>/`
//!   (`stage`, `abort_cause`, `conflicts`, `debug`, `partial`) and module
//!   loading ([`Kernel`], [`Stage`]).
//! - [`record`]: what ksplice-apply keeps about an applied update
//!   (`$KSPLICE_STATE/<kid>/`: description, patched functions, contents,
//!   patch), read by ksplice-view and ksplice-undo ([`Record`]).
//! - [`store`]: the updates installed to be applied again at every boot
//!   of their kernel (`$KSPLICE_LIB/<release>/`, default
//!   `/var/lib/ksplice`), kept by `ksplice-apply --install`, applied by
//!   `ksplice-apply --all-installed` (ksplice.service), removed by
//!   `ksplice-undo --uninstall` ([`store::Store`]).
//! - [`ui`]: the tools' common output conventions (progress, `-v` command
//!   echo, `--raw-errors`), abort-cause explanations and the busy tasks of
//!   `conflicts` in words ([`Ui`]).
//! - [`cli`]: the shared options, exit statuses and the shared `main`
//!   ([`tool_main`]), whose termination signals go through
//!   [`crate::util::interrupt`] (each tool's options, and its exit
//!   statuses in words, are in `src/cli/`).
//! - [`apply`], [`undo`], [`view`]: the tools' flows, which the binaries
//!   call after parsing their command lines.
//!
//! The update itself is opened with [`crate::package::Update`].

pub mod apply;
pub mod cli;
pub mod env;
pub mod kernel;
pub mod record;
pub mod store;
pub mod ui;
pub mod undo;
pub mod view;

#[cfg(test)]
mod testkit;

pub use cli::{
    CommonOpts, DebugOpts, EXIT_ABORTED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, tool_main,
};
pub use env::Env;
pub use kernel::{Kernel, Stage};
pub use record::{Record, short_description};
pub use ui::{Ui, describe_conflicts, explain_apply, explain_undo};
