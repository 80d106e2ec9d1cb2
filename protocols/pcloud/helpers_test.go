package pcloud

// MB is a mebibyte: pCloud's watchers get an update per MB.
const MB = 1 << 20
