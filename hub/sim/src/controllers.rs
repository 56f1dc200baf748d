//! Emulated controllers (placeholder).
use std::sync::Arc;
use std::time::Duration;
use crate::store::Store;
/// Spawns the controllers.
pub fn spawn(_store: Arc<Store>, _ready_delay: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {})
}
