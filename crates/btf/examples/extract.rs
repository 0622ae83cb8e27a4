//! Prints the schema of an eBPF object: `cargo run -p ebpf-sdk-btf --example extract -- FILE`.
fn main() {
    let path = std::env::args().nth(1).expect("usage: extract FILE");
    match ebpf_sdk_btf::extract_file(&path) {
        Ok(doc) => print!("{}", doc.to_json_pretty()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
