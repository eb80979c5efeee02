//! The typed configuration model, its readers and validation.
