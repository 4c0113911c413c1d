//! Storage for mailaudit (work in progress).
