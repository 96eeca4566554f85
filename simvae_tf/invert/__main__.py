from simvae_tf.invert.cli import main

main()
