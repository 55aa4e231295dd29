//! The LINSTOR REST API's views of a database (placeholder filled below).
