//! Configuration of the autoscaler: parsing, validation and cron schedules.
