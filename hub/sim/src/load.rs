//! Load model (placeholder).
/// The load model.
#[derive(Debug, Default)]
pub struct LoadModel;
impl LoadModel {
    /// A new model.
    pub fn new() -> Self { Self }
}
