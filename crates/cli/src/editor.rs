//! The `$EDITOR` round trip for `create`, as `kubectl edit` does it.
//!
//! The template is written to a private file (0600 in a 0700 directory), the
//! user's `$VISUAL` or `$EDITOR` runs on it, and the result is validated. On
//! an error the editor reopens on the user's own text with the error as a
//! comment at the top. Saving it unchanged or empty aborts. The user's text is
//! never lost: on abort or error it is kept and its path is printed.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// Marks the lines we add, so they are stripped before validation.
const ERROR_PREFIX: &str = "# ERROR: ";

/// How the round trip ended.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The edited text validated; the temporary files are removed.
    Done(T),
    /// Saved unchanged or empty: nothing to do. The text is kept at this path
    /// when the user had changed anything before.
    Aborted(Option<PathBuf>),
}

/// The editor command: `$VISUAL`, else `$EDITOR`. No fallback to some other
/// editor: a user who has none set gets told how to set one.
pub fn editor_command() -> anyhow::Result<String> {
    for var in ["VISUAL", "EDITOR"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return Ok(v);
            }
        }
    }
    bail!("no editor: set $VISUAL or $EDITOR (e.g. EDITOR=vi), or pass the entry with -f FILE")
}

/// A private directory that is removed on drop unless kept.
struct Scratch {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn scratch_dir() -> anyhow::Result<Scratch> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "ebpf-sdk-edit-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(Scratch { dir, keep: false }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!("cannot create a private directory under {}", base.display())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn strip_errors(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(ERROR_PREFIX))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

fn run_editor(editor: &str, file: &Path) -> anyhow::Result<()> {
    // Through the shell so `EDITOR="code --wait"` works as it does for git.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("ebpf-sdk-editor")
        .arg(file)
        .status()
        .with_context(|| format!("cannot run the editor `{editor}`"))?;
    if !status.success() {
        bail!("the editor `{editor}` failed ({status})");
    }
    Ok(())
}

/// Opens the editor on `template` until `validate` accepts the text, the
/// user aborts, or the editor fails. `name` becomes the file name, so the
/// editor picks YAML highlighting.
pub fn edit_until_valid<T>(
    template: &str,
    name: &str,
    mut validate: impl FnMut(&str) -> anyhow::Result<T>,
    mut notice: impl FnMut(&str),
) -> anyhow::Result<Outcome<T>> {
    let editor = editor_command()?;
    let mut scratch = scratch_dir()?;
    let file = scratch.dir.join(name);
    write_private(&file, template)?;
    let mut shown = template.to_string();
    loop {
        if let Err(e) = run_editor(&editor, &file) {
            scratch.keep = shown != template;
            if scratch.keep {
                return Err(e.context(format!("your text is kept in {}", file.display())));
            }
            return Err(e);
        }
        let edited =
            fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
        let body = strip_errors(&edited);
        if edited == shown || is_blank(&body) {
            let changed_before = strip_errors(&shown) != template && !is_blank(&body);
            scratch.keep = changed_before;
            return Ok(Outcome::Aborted(changed_before.then(|| file.clone())));
        }
        match validate(&body) {
            Ok(v) => return Ok(Outcome::Done(v)),
            Err(e) => {
                let msg = crate::chain(&e);
                notice(&msg);
                let mut text = String::new();
                for line in msg.lines() {
                    text.push_str(ERROR_PREFIX);
                    text.push_str(line);
                    text.push('\n');
                }
                text.push_str("# Fix the entry and save, or save it unchanged to abort.\n");
                text.push_str(&body);
                write_private(&file, &text)?;
                shown = text;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_stripped_and_blank_detected() {
        let t = "# ERROR: bad\nkey: 1\n";
        assert_eq!(strip_errors(t), "key: 1\n");
        assert!(is_blank("# only a comment\n\n"));
        assert!(!is_blank("key: {}\n"));
    }
}
