/* Bench only: the tether command's main() renamed, for stackpaint.c to call on its stack. */
#define main tether_cli_main
#include "../cli/main.c"
