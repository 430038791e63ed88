fn main() -> std::process::ExitCode {
    qcgate::cli::main()
}
