//! A report, not a test: which objects and maps of the real-world corpus
//! (crates/btf/tests/fixtures/realworld/README.md) have each shape that
//! issue 13 was about — addresses, global data, arrays, `_Bool`, legacy
//! pinning, perf arrays, maps with nothing to write — and what ebpf-sdk does
//! with each of them now. The checks live in `tests/realworld`; this is for
//! looking at real objects when a new kind of map turns up.
//!
//! ```sh
//! bash .ci/setup   # installs the Debian packages whose objects it reads
//! cargo run -p ebpf-sdk-cli --example corpus_survey
//! ```

use std::path::Path;
use std::sync::OnceLock;

use ebpf_sdk::schema::{Document, MapSchema};
use ebpf_sdk_testkit::corpus::{self, Corpus, CorpusObject};

mod survey;

/// Possible CPUs assumed for per-CPU values.
const NCPUS: usize = 2;

fn the_corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        corpus::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../btf/tests/fixtures/realworld"))
    })
}

/// Every map of every object that extracts.
fn all_maps() -> impl Iterator<Item = (&'static CorpusObject, &'static MapSchema)> {
    static E: OnceLock<Vec<(&'static CorpusObject, Document)>> = OnceLock::new();
    E.get_or_init(|| {
        the_corpus()
            .objects
            .iter()
            .filter_map(|o| {
                let doc = ebpf_sdk::btf::extract_elf(&o.bytes, &o.name).ok()?;
                Some((o, doc))
            })
            .collect()
    })
    .iter()
    .flat_map(|(o, d)| d.maps.iter().map(move |m| (*o, m)))
}

fn main() {
    survey::survey();
}
