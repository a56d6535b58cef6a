/* Recipe files: a training configuration that `bertc train --recipe FILE` reads as if its
 * lines were flags given before the command line's own (so the command line overrides them).
 * One setting a line: "key = value", "key value" or "key" (a boolean flag); '#' starts a comment. */
#ifndef BERTC_CLI_RECIPE_H
#define BERTC_CLI_RECIPE_H

/* Returns a new argv: argv[0], the recipe's flags, then argv[1..]. The recipe is named by the
 * first "--recipe FILE" or "--recipe=FILE" of argv, which is removed. Exits with a message on a bad file
 * (the file itself is read by util/recipe_file.h). */
char **recipe_expand(int argc, char **argv, int *out_argc);
/* Frees what recipe_expand returned (argc, argv: the ones given to it). */
void recipe_free(char **v, int argc, char **argv);

#endif
