//! Ksplice for modern kernels: the libraries behind `ksplice-obj`,
//! `ksplice-create` and the update tools.
//!
//! The folders are the layers of the architecture (docs/DESIGN.md), each
//! looking only down:
//!
//! | layer | folder | what |
//! |---|---|---|
//! | 5 | [`cli`] | every tool's command line, exit statuses, man page and completions |
//! | 4 | [`create`], [`update`] | ksplice-create's stages; ksplice-apply, -undo and -view |
//! | 3 | [`obj`], [`package`] | ksplice-obj's commands and marker files; the update tarball's format |
//! | 2 | [`engine`] | the object engine: ELF model, spans, differencing, transforms, metadata, DWARF layouts |
//! | 1 | [`util`] | small shared pieces: atomic files and locks, output, termination signals |

pub mod cli;
pub mod create;
pub mod engine;
pub mod obj;
pub mod package;
pub mod update;
pub mod util;
