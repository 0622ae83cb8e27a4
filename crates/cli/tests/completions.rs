//! The completion scripts `ebpf-sdk completions SHELL` prints, loaded into
//! the real shells as the README installs them: bash and fish complete a
//! subcommand and its options from them (fish without a warning), and
//! zsh parses and autoloads its script. A shell that is not installed is
//! counted as ignored, with the reason (`bash .ci/setup` installs zsh and
//! fish; `EBPF_SDK_REQUIRE_KERNEL=1` makes it a failure).

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use ebpf_sdk_testkit::harness::Need;

ebpf_sdk_testkit::harness! {
    bash_completes_subcommands_and_options: [Need::Programs(&["bash"])],
    fish_completes_subcommands_and_options: [Need::Programs(&["fish"])],
    zsh_loads_its_completion_function: [Need::Programs(&["zsh"])],
}

/// The script for `shell`, written as `name` in a new directory.
fn script(shell: &str, name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let out = Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, out.stdout).unwrap();
    (dir, path)
}

/// Runs `shell args...` in a new empty directory (a broken script may
/// create files where it runs) and returns its stdout; stderr must be empty.
fn run(shell: &str, args: &[&str]) -> String {
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(shell)
        .args(args)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{shell} {args:?}: {}\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

fn words(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

fn bash_completes_subcommands_and_options() {
    let (_dir, path) = script("bash", "ebpf-sdk");
    // What bash-completion does with a file in its completions directory:
    // source it, then call the function `complete -F` registered.
    let complete = |line: &str| {
        let program = r#"source "$1"
f=$(complete -p ebpf-sdk | sed -E 's/.* -F ([^ ]+) .*/\1/')
COMP_LINE="$2"; COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$2"
[[ "$2" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
"$f" ebpf-sdk "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#;
        run(
            "bash",
            &["-c", program, "bash", &path.display().to_string(), line],
        )
    };
    assert_eq!(words(&complete("ebpf-sdk js")), ["json-schema"]);
    assert_eq!(words(&complete("ebpf-sdk l")), ["lookup", "ls"]);
    let opts = complete("ebpf-sdk json-schema --");
    for o in [
        "--elf", "--schema", "--pinned", "--map", "--cpus", "--output",
    ] {
        assert!(words(&opts).contains(&o), "{o} not in {opts}");
    }
    assert_eq!(words(&complete("ebpf-sdk ls -o ")), ["table", "json"]);
}

fn fish_completes_subcommands_and_options() {
    let (_dir, path) = script("fish", "ebpf-sdk.fish");
    let complete = |line: &str| {
        let program = format!("source {}; complete -C '{line}'", path.display());
        run("fish", &["--no-config", "-c", &program])
    };
    let first = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(first(complete("ebpf-sdk js")), ["json-schema"]);
    let opts = first(complete("ebpf-sdk template --"));
    assert!(opts.contains(&"--modeline".to_string()), "{opts:?}");
    // Option values with their help: the texts must survive fish's quoting.
    let formats = complete("ebpf-sdk encode -o ");
    assert!(
        formats.contains("json\t") && formats.contains("hex\t"),
        "{formats}"
    );
}

fn zsh_loads_its_completion_function() {
    let (dir, path) = script("zsh", "_ebpf-sdk");
    run("zsh", &["-n", &path.display().to_string()]);
    // As installed in a directory on $fpath: compinit finds the function.
    let program = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; autoload -Uz _ebpf-sdk; \
         print -r -- $_comps[ebpf-sdk]; whence -w _ebpf-sdk",
        dir.path().display()
    );
    let out = run("zsh", &["-f", "-c", &program]);
    assert_eq!(
        words(&out),
        ["_ebpf-sdk", "_ebpf-sdk:", "function"],
        "{out}"
    );
    assert!(Path::new(&path).is_file());
}
