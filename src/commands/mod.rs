//! One module per subcommand: each turns validated settings into work and an exit code.

pub mod adapt;
pub mod analyze;
pub mod bench;
pub mod finetune;
pub mod generate;
pub mod inspect;
pub mod merge;
pub mod predict;
pub mod report;
