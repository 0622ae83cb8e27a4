//! A state file for several maps (`maps: {NAME: [entries]}`): every map and
//! every entry is checked before anything is written, then map by map.

use std::io::BufRead;

use super::{ApplyEvent, ApplyOptions, ApplyRecord};
use crate::entries::{Entry, EntryReader};
use crate::error::InputErrorKind;
use crate::handle::MapHandle;
use crate::object::Object;
use crate::SdkError;

impl Object {
    /// Makes several maps hold the entries a state file gives them
    /// (`maps: {NAME: [entries]}`, see [`crate::EntryReader`]); `name` names
    /// the input in messages.
    ///
    /// The whole file is read and every entry of every map is validated, and
    /// every map opened and checked against the schema, before anything is
    /// written; then each map is applied in turn (in the file's order), as
    /// [`MapHandle::apply`] does, with its own backup
    /// (`<file>.<map>.jsonl` for [`crate::Backup::To`]). `on` gets each
    /// map's events with the map.
    ///
    /// The record of every map that was applied is pushed to `records`,
    /// also of the one that failed; the error of that map is returned.
    ///
    /// ```no_run
    /// use ebpf_sdk::{ApplyOptions, Object};
    ///
    /// let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
    /// let state = std::io::BufReader::new(std::fs::File::open("state.yaml").unwrap());
    /// let opts = ApplyOptions { prune: true, ..Default::default() };
    /// let mut records = Vec::new();
    /// let result = obj.apply_state(state, "state.yaml", &opts, &mut |_, _| {}, &mut records);
    /// println!("{}", serde_json::to_string_pretty(&records).unwrap()); // what --report writes
    /// result?;
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn apply_state<R: BufRead>(
        &self,
        reader: R,
        name: &str,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(&MapHandle, ApplyEvent<'_>),
        records: &mut Vec<ApplyRecord>,
    ) -> Result<(), SdkError> {
        let entries: Vec<Entry> = EntryReader::new(reader, name).collect::<Result<_, _>>()?;
        let mut names: Vec<&str> = Vec::new();
        for e in &entries {
            let Some(m) = e.map.as_deref() else {
                return Err(e.error(InputErrorKind::MapsNotNamed));
            };
            self.map(m)?;
            if !names.contains(&m) {
                names.push(m);
            }
        }
        fn mine<'e>(entries: &'e [Entry], map: &'e str) -> impl Iterator<Item = &'e Entry> {
            entries
                .iter()
                .filter(move |e| e.map.as_deref() == Some(map))
        }
        let mut handles = Vec::with_capacity(names.len());
        for n in &names {
            let h = self.open(n)?;
            // Validate this map's entries before anything is written anywhere.
            for e in mine(&entries, n) {
                h.validate(e)?;
            }
            handles.push(h);
        }
        let several = handles.len() > 1;
        for h in &handles {
            let opts = opts.resolved(h.name(), several);
            let result = h.apply(
                mine(&entries, h.name()).cloned().map(Ok),
                &opts,
                &mut |ev| on(h, ev),
            );
            records.push(ApplyRecord::new(h, name, &opts, &result));
            result?;
        }
        Ok(())
    }
}
