// mimalloc: the request path allocates many small strings; the system
// allocator showed as ~18% of a read-load profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    qcgate::cli::main()
}
