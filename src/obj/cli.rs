//! Command line of `ksplice-obj`, identical to `ksplice-obj.pl`'s, plus
//! `--help` and `--version` (`-V`), which the Perl tool did not have.

use clap::{Parser, Subcommand};

/// All command names, for the usage line.
pub const COMMANDS: &[&str] = &[
    "snap",
    "diff",
    "old_code",
    "combine",
    "finalize",
    "rmsyms",
    "system_map_lookup",
];

/// `ksplice-obj COMMAND ARGS...`
#[derive(Debug, Parser)]
#[command(
    name = "ksplice-obj",
    version,
    about = "Per-object step of a Ksplice build (drop-in for ksplice-obj.pl)"
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Record OBJ as the baseline: remove stale outputs, write an empty marker.
    Snap {
        /// OBJ.KSPLICE
        marker: String,
    },
    /// Compare OBJ with OBJ.KSPLICE_pre and write the marker.
    Diff {
        /// OBJ.KSPLICE
        marker: String,
    },
    /// Write OBJ.KSPLICE_old_code from OBJ.KSPLICE_pre (or OBJ).
    #[command(name = "old_code")]
    OldCode {
        /// OBJ.KSPLICE_old_code
        out: String,
    },
    /// Combine the markers of a composite object's parts.
    Combine {
        /// OUT.KSPLICE
        out: String,
        /// Parts: X.KSPLICE, X.KSPLICE_old_code, or the target's own object.
        inputs: Vec<String>,
    },
    /// Make linked update code loadable.
    Finalize {
        /// Input object or empty archive.
        input: String,
        /// Output object.
        out: String,
        /// The target (vmlinux or a module name).
        target: String,
    },
    /// Replace relocations against symbols the core extracts itself.
    Rmsyms {
        /// Input object.
        input: String,
        /// Output object.
        out: String,
    },
    /// Print SYMBOL's address from $KSPLICE_CONFIG_DIR/System.map.
    #[command(name = "system_map_lookup")]
    SystemMapLookup {
        /// Symbol name.
        symbol: String,
    },
}

/// The usage line naming every command.
pub fn usage() -> String {
    format!("Usage: ksplice-obj {} ...", COMMANDS.join("|"))
}
