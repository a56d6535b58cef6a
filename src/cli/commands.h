/* One function per subcommand; each parses its own flags and returns the process exit status. */
#ifndef BERTC_CLI_COMMANDS_H
#define BERTC_CLI_COMMANDS_H

int cmd_tokenize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);

#endif
