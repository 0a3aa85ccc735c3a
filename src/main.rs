// The binary has no unsafe code; the library keeps its own in `tarjama::kernels`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use tarjama::cli::Cli;
use tarjama::commands::{self, Outcome};

// The decoding loop allocates and frees large logits and cache buffers every step; glibc's
// allocator returns them to the OS and faults them back in, mimalloc reuses them (beam search
// measured 1.25x faster on the benchmark model). Its settings: `tarjama::allocator`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tarjama::allocator::configure();
    let cli = Cli::parse();
    let verbose = cli.verbose();
    if !verbose {
        // With RUST_BACKTRACE set, as many shells have it, candle captures a backtrace into each
        // error it makes, and its message carries 30 frames into ours. RUST_LIB_BACKTRACE=0
        // turns that capture off and leaves panics' backtraces alone; no other thread runs yet
        // to read the environment meanwhile.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    if !cli.handles_signals() {
        tarjama::interrupt::install();
    }
    // A bad TARJAMA_ISA is refused here, before the kernels (which cannot fail) read it.
    let isa_limit = tarjama::kernels::isa_limit().map_err(tarjama::Error::usage);
    match isa_limit
        .and_then(|_| cli.check())
        .and_then(|()| commands::run(cli))
    {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        // The reader of a pipe has all it wanted (`| head -1`).
        Err(tarjama::Error::StdoutClosed) => ExitCode::SUCCESS,
        Err(err) => {
            let message = if verbose {
                err.to_string()
            } else {
                err.one_line()
            };
            eprintln!("{}: {message}", tarjama::output::error_prefix());
            ExitCode::from(err.exit_code())
        }
    }
}
