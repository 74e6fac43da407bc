/*
 * main.c - the archrouter program: global options and dispatch to one command.
 *
 * Each command lives in its own cmd_*.c file and uses only the public API
 * (include/archrouter.h). Help goes to stdout with exit 0; misuse prints a message and a
 * hint to stderr and exits 2; failures print "archrouter: error: ..." and exit 1.
 */
#include "cli.h"

#include "archrouter.h"

#include <string.h>

static const ar_cli_command commands[] = {
    {"route", "name the route of a conversation (Arch-Router) from a routes config", ar_cmd_route},
    {"eval", "routing accuracy (turn, span, conversation) on labelled conversations", ar_cmd_eval},
    {"serve", "OpenAI-compatible routing proxy: route each chat request, forward it upstream",
     ar_cmd_serve},
    {"info", "describe a model file: architecture, sizes, tensor types, tokenizer", ar_cmd_info},
    {"tokenize", "token ids and pieces of a text", ar_cmd_tokenize},
    {"generate", "greedy continuation of a prompt (debugging; prints tokens/s)", ar_cmd_generate},
    {"logits", "log-sum-exp and top logits of token ids (to compare with references)",
     ar_cmd_logits},
    {"bench", "measure speed: prefill/decode tokens/s, tokenizer MB/s, memory", ar_cmd_bench},
    {"pull", "download a model from the Hugging Face hub into the cache", ar_cmd_pull},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static int print_help(void) {
    printf("archrouter %s - preference-aligned LLM routing (Arch-Router) in one program\n\n"
           "Usage: archrouter COMMAND [OPTIONS] [ARGS]\n"
           "       archrouter --help | --version\n\n"
           "Commands:\n",
           ar_version());
    for (size_t i = 0; i < N_COMMANDS; i++)
        printf("  %-10s %s\n", commands[i].name, commands[i].summary);
    printf("\n'archrouter COMMAND --help' explains a command.\n\n"
           "Models: a GGUF file (v2/v3; F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,\n"
           "Q2_K..Q6_K) or a Hugging Face checkpoint directory (config.json and\n"
           "model.safetensors, or shards listed in model.safetensors.index.json).\n\n"
           "Exit status:\n"
           "  0  success\n"
           "  1  the command failed (unreadable or invalid model, I/O error, ...)\n"
           "  2  usage error (unknown command or option, missing argument)\n");
    return ar_cli_finish_output(AR_EXIT_OK);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("archrouter: error: no command given\n"
              "Usage: archrouter COMMAND [OPTIONS] [ARGS]\n"
              "Try 'archrouter --help'.\n",
              stderr);
        return AR_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (ar_cli_is_help(cmd) || strcmp(cmd, "help") == 0) return print_help();
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("archrouter %s\n", ar_version());
        return ar_cli_finish_output(AR_EXIT_OK);
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    if (cmd[0] == '-') return ar_cli_usage_error(NULL, "unknown option '%s'", cmd);
    return ar_cli_usage_error(NULL, "unknown command '%s'", cmd);
}
