//! scalehub: one process that autoscales many Kubernetes workloads.
