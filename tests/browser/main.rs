//! Browser tests: placeholder until the dashboard lands.
