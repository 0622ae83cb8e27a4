//! `ebpf-sdk`: program eBPF maps from nothing but the eBPF object file.
//!
//! A thin layer over the library crates: argument parsing, turning arguments
//! into library calls, the `$EDITOR` round trip and rendering.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Exit codes, documented in `--help` and the README.
mod exit {
    pub const USAGE: u8 = 2;
}

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 key not found (lookup/delete), 2 usage or input error, 3 the kernel refused.";

/// Program eBPF maps from the BTF in the eBPF object file.
#[derive(Parser, Debug)]
#[command(name = "ebpf-sdk", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Describe every map of an eBPF object as a JSON schema document.
    #[command(after_help = "Example:\n  ebpf-sdk extract --elf firewall-ebpf/firewall.bpf.o -o fw.schema.json")]
    Extract {
        /// The eBPF object (clang -g -target bpf).
        #[arg(long, value_name = "FILE")]
        elf: PathBuf,
        /// Write the document here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Extract { elf, output } => {
            let doc = ebpf_sdk_btf::extract_file(&elf)?;
            let text = doc.to_json_pretty();
            match output {
                Some(out) => std::fs::write(&out, text).with_context(|| format!("cannot write {}", out.display()))?,
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
