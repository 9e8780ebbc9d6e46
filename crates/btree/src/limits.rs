//! The size limits, checked before anything is touched.

use snowfall_node::layout::MAX_REFERENCE;
use snowfall_node::{MAX_ENTRY, MAX_KEY};

use crate::error::Error;

/// Keys longer than [`MAX_KEY`] are refused.
pub(crate) fn check_key(key: &[u8]) -> Result<(), Error> {
    if key.len() > MAX_KEY {
        return Err(Error::KeyTooLarge { len: key.len(), max: MAX_KEY });
    }
    Ok(())
}

/// Keys longer than [`MAX_KEY`], and references longer than
/// [`MAX_REFERENCE`], are refused.
pub(crate) fn check_reference(key: &[u8], reference: &[u8]) -> Result<(), Error> {
    check_key(key)?;
    if reference.len() > MAX_REFERENCE {
        return Err(Error::ValueTooLarge { len: reference.len(), max: MAX_REFERENCE });
    }
    Ok(())
}

/// Keys longer than [`MAX_KEY`], and entries longer than [`MAX_ENTRY`]
/// (key plus value), are refused.
pub(crate) fn check_entry(key: &[u8], value: &[u8]) -> Result<(), Error> {
    check_key(key)?;
    let max = MAX_ENTRY.saturating_sub(key.len());
    if value.len() > max {
        return Err(Error::ValueTooLarge { len: value.len(), max });
    }
    Ok(())
}
