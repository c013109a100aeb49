//! Not written yet (issue 20): see [`super`].

use super::{Input, OutputFile};

/// Not written yet.
pub fn render(_input: &Input) -> Result<Vec<OutputFile>, String> {
    Err("this format is not written yet".to_owned())
}
