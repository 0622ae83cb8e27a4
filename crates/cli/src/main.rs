//! `ebpf-sdk`: program eBPF maps from nothing but the eBPF object file.
//!
//! A thin client of the `ebpf-sdk` library: clap definitions ([`args`]),
//! one file per command turning arguments into library calls ([`cmd`]),
//! the `$EDITOR` round trip ([`editor`]) and rendering ([`render`]).
#![forbid(unsafe_code)]

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use ebpf_sdk::{ErrorClass, SdkError};

mod args;
mod cmd;
mod editor;
mod render;

use args::{Cli, Command};

/// Exit codes, documented in `--help` and the README.
mod exit {
    pub const NOT_FOUND: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const KERNEL: u8 = 3;
    /// `EX_SOFTWARE`: a failure inside ebpf-sdk (README; rare enough not
    /// to crowd `--help`).
    pub const INTERNAL: u8 = 70;
    pub const INTERRUPTED: u8 = 130;
}

/// Output settings shared by the commands.
pub(crate) struct Ui {
    pub(crate) quiet: bool,
    pub(crate) color: bool,
}

impl Ui {
    /// A message to stderr, unless `--quiet`.
    pub(crate) fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && io::stderr().is_terminal();
    let ui = Ui {
        quiet: cli.quiet,
        color,
    };
    match run(cli.command, &ui) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let prefix = if ui.color {
                "\x1b[31merror:\x1b[0m"
            } else {
                "error:"
            };
            eprintln!("{prefix} {}", chain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Runs one command.
fn run(command: Command, ui: &Ui) -> anyhow::Result<ExitCode> {
    match command {
        Command::Extract {
            elf,
            output,
            summary,
        } => cmd::schema::extract(&elf, output.as_deref(), summary),
        Command::Describe { pinned, output } => cmd::schema::describe(&pinned, output.as_deref()),
        Command::Template { schema } => cmd::schema::template(&schema),
        Command::Encode {
            schema,
            file,
            key,
            value,
            output,
        } => cmd::codec::encode(
            &schema,
            file.as_deref(),
            key.as_deref(),
            value.as_deref(),
            output,
        ),
        Command::Decode {
            schema,
            key,
            value,
            type_name,
            output,
        } => cmd::codec::decode(
            &schema,
            key.as_deref(),
            value.as_deref(),
            type_name.as_deref(),
            output,
        ),
        Command::Create { target, file } => cmd::entry::create(&target, file.as_deref(), ui),
        Command::Update {
            target,
            file,
            key,
            value,
            exist,
            noexist,
        } => cmd::entry::update(
            &target,
            file.as_deref(),
            key.as_deref(),
            value.as_deref(),
            cmd::entry::flags(exist, noexist),
            ui,
        ),
        Command::Lookup {
            target,
            key,
            output,
        } => cmd::entry::lookup(&target, &key, output),
        Command::Delete { target, key } => cmd::entry::delete(&target, &key, ui),
        Command::Dump { target, output } => cmd::dump::dump(&target, output),
        Command::Apply(args) => cmd::apply::apply(&args, ui),
        Command::Export(args) => cmd::export::export(&args, ui),
        Command::Events {
            target,
            type_name,
            count,
            timeout,
        } => cmd::events::events(&target, type_name.as_deref(), count, timeout, ui),
        Command::Pop { target } => cmd::entry::pop_or_peek(&target, true),
        Command::Peek { target } => cmd::entry::pop_or_peek(&target, false),
        Command::Enrich {
            schema,
            set,
            pin_dir,
        } => cmd::enrich::enrich(&schema, &set, pin_dir.as_deref(), ui),
        Command::Completions { shell } => cmd::schema::completions(shell),
    }
}

/// The error and its causes, skipping causes already in the message.
fn chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(s) = cause.downcast_ref::<SdkError>() {
            return match s.class() {
                ErrorClass::Kernel => exit::KERNEL,
                ErrorClass::Input => exit::INPUT,
                ErrorClass::Interrupted => exit::INTERRUPTED,
                ErrorClass::Internal => exit::INTERNAL,
            };
        }
        if cause
            .downcast_ref::<ebpf_sdk::backend::BackendError>()
            .is_some()
        {
            return exit::KERNEL;
        }
    }
    exit::INPUT
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<SdkError>().is_some_and(|s| {
                matches!(s, SdkError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
            })
    })
}
