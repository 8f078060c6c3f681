/* Poisoned header: only src/ui may use curses (DESIGN.md, layer rule). */
#error "curses is private to src/ui: core, net and agent must not include it"
