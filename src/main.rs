//! The `edgewatch` binary: everything lives in the library; see `edgewatch --help`.

fn main() -> std::process::ExitCode {
    edgewatch::main()
}
