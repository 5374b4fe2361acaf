package store

// clairLayersSchema holds Clair v1's named layers (migration 2).
const clairLayersSchema = ``
