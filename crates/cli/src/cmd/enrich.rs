//! `enrich`: record pin paths in a saved schema, given or picked.

use std::io::{self, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use ebpf_sdk::{Object, DEFAULT_PIN_DIR};

use crate::Ui;

/// `enrich --set NAME=PATH ...`, or a picker per map on a terminal.
pub(crate) fn enrich(
    schema: &Path,
    set: &[String],
    pin_dir: Option<&Path>,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let mut obj = Object::from_schema_file(schema)?;
    if !set.is_empty() {
        for s in set {
            let (name, path) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {s}: expected NAME=PATH"))?;
            obj.record_pin(name, path)?;
        }
    } else {
        if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
            bail!("no terminal to pick pinned maps on; pass --set NAME=PATH for each map");
        }
        pick(&mut obj, pin_dir.unwrap_or(Path::new(DEFAULT_PIN_DIR)), ui)?;
    }
    obj.save(schema)?;
    ui.note(&format!("{}: pin paths recorded", schema.display()));
    Ok(ExitCode::SUCCESS)
}

/// Asks, for each map, which pinned map of matching type and sizes it is.
fn pick(obj: &mut Object, dir: &Path, ui: &Ui) -> anyhow::Result<()> {
    let pins = ebpf_sdk::scan_pinned(dir);
    let names: Vec<String> = obj.maps().iter().map(|m| m.name.clone()).collect();
    for name in names {
        let m = obj.map(&name)?;
        let candidates = ebpf_sdk::candidates(m, &pins);
        if candidates.is_empty() {
            ui.note(&format!(
                "{}: no pinned map of matching type and sizes under {}",
                m.name,
                dir.display()
            ));
            continue;
        }
        let mut items: Vec<String> = candidates
            .iter()
            .filter_map(|p| {
                let info = p.map_info()?;
                Some(format!(
                    "{} ({} id {})",
                    p.path.display(),
                    info.name,
                    info.id
                ))
            })
            .collect();
        items.push("(skip)".into());
        let choice = dialoguer::Select::new()
            .with_prompt(format!("pin path for {}", m.summary()))
            .items(&items)
            .default(0)
            .interact()?;
        if let Some(p) = candidates.get(choice) {
            let path = p.path.clone();
            obj.record_pin(&name, path)?;
        }
    }
    Ok(())
}
