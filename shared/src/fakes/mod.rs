//! In-memory implementations of the ports, for unit tests, integration tests and examples
//! (feature `fakes`; a release build of a function does not enable it, so no fake is in a
//! deployed binary). Each counts its calls and can be told to fail.

pub mod ecr;
pub mod metrics;
pub mod objects;
pub mod queue;
pub mod secrets;

pub use ecr::{FakeEcr, FakeEcrSettings, FakeEcrState, FakeTemplates, fake_registry};
pub use metrics::FakeMetrics;
pub use objects::FakeObjects;
pub use queue::{FakeQueue, FakeRunStore};
pub use secrets::FakeSecrets;
