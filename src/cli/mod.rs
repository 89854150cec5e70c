//! The command lines of the tools, in one place: each tool's clap
//! definition, its exit statuses and environment, and from them its man
//! page and shell completions. The binaries in `src/bin/` parse with these
//! and call the flows of [`crate::create`], [`crate::update`] and
//! [`crate::obj`]. By concern:
//!
//! - [`create`]: ksplice-create's options and the Perl tool's spellings.
//! - [`update`]: the options of ksplice-apply, ksplice-undo and
//!   ksplice-view.
//! - [`obj`]: ksplice-obj's command line ([`crate::obj::cli`]) with its
//!   `--help` epilogue.
//! - [`exit`]: every tool's exit statuses and environment, for `--help`
//!   and the man pages.
//! - [`docs`]: the man pages (clap_mangen) and the bash, zsh and fish
//!   completions (clap_complete) that `ksplice-gen-docs` writes.

pub mod create;
pub mod docs;
pub mod exit;
pub mod obj;
pub mod update;

use clap::CommandFactory;

/// A user-facing tool: what its man page and completions are made from.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    /// The program name.
    pub name: &'static str,
    /// Its clap command, exactly as the binary parses with it.
    pub command: fn() -> clap::Command,
    /// Its exit statuses and environment (also the command's `--help`
    /// epilogue).
    pub epilogue: &'static exit::Epilogue,
}

/// The tools that get a man page and completions, in the order of a
/// Ksplice run (the helpers `ksplice-inspect` and `ksplice-kernel-utsname`
/// are run only by the Perl ksplice-create).
pub const TOOLS: &[Tool] = &[
    Tool {
        name: "ksplice-create",
        command: create::CreateCli::command,
        epilogue: &exit::CREATE,
    },
    Tool {
        name: "ksplice-apply",
        command: update::ApplyCli::command,
        epilogue: &exit::APPLY,
    },
    Tool {
        name: "ksplice-undo",
        command: update::UndoCli::command,
        epilogue: &exit::UNDO,
    },
    Tool {
        name: "ksplice-view",
        command: update::ViewCli::command,
        epilogue: &exit::VIEW,
    },
    Tool {
        name: "ksplice-obj",
        command: obj::command,
        epilogue: &exit::OBJ,
    },
];

/// What `--version` prints: `TOOL VERSION` (the crate's version), as clap
/// does for the tools with a clap command line.
pub fn version_line(tool: &str) -> String {
    format!("{tool} {}", env!("CARGO_PKG_VERSION"))
}

/// Whether the arguments (without the program name) of a helper without
/// a clap command line ask for its version: `--version` or `-V` alone.
pub fn asks_version(args: &[String]) -> bool {
    matches!(args, [a] if a == "--version" || a == "-V")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_named_as_its_command_and_has_a_version() {
        for t in TOOLS {
            let cmd = (t.command)();
            assert_eq!(cmd.get_name(), t.name);
            assert_eq!(cmd.get_version(), Some(env!("CARGO_PKG_VERSION")));
            let after = cmd.get_after_help().map(|h| h.to_string());
            assert_eq!(after, Some(t.epilogue.help()), "{}", t.name);
            cmd.debug_assert();
        }
        assert!(asks_version(&["-V".into()]));
        assert!(!asks_version(&["--version".into(), "x".into()]));
        assert_eq!(
            version_line("x"),
            format!("x {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
